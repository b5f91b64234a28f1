"""Hydra composition: the single way code gets settings (no working-directory change)."""

from __future__ import annotations

import ast
import difflib
import os
import re
import shlex
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ticketml.errors import ConfigError


def config_dir() -> Path:
    """`$TICKETML_CONFIG_DIR`, else ./configs (a project's own copy), else the defaults that ship
    inside the package (ticketml/configs/; the repository's configs/ links to them)."""
    candidates = [os.environ.get("TICKETML_CONFIG_DIR"), "configs"]
    candidates.append(str(Path(__file__).resolve().parent / "configs"))
    for cand in candidates:
        if cand and (Path(cand) / "config.yaml").is_file():
            return Path(cand).resolve()
    raise ConfigError("no configs/config.yaml found (set TICKETML_CONFIG_DIR)")


def parse_overrides_option(value: str) -> list[str]:
    """The one override parser for `--overrides` (CLI and MLproject entry points): the original
    CLI's list literal `'["a=b", "c=d"]'`, or overrides separated by spaces (`a=b c='x y'`)."""
    value = value.strip()
    if not value:
        return []
    if not value.startswith("["):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ConfigError(f"--overrides is not a list of key=value: {value} ({exc})") from exc
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError) as exc:
        raise ConfigError(f"--overrides is not a list of strings: {value}") from exc
    if not isinstance(parsed, list | tuple) or not all(isinstance(x, str) for x in parsed):
        raise ConfigError(f"--overrides is not a list of strings: {value}")
    return list(parsed)


def _compose(overrides: Sequence[str]) -> DictConfig:
    from ticketml.settings import register

    register()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def known_keys() -> list[str]:
    return list(flatten(OmegaConf.to_container(_compose([]), resolve=False)))


def explain(exc: Exception, overrides: Sequence[str]) -> str:
    """One line for a configuration error: the key, and the closest valid one when misspelled."""
    text = str(exc).splitlines()[0]
    match = re.search(r"Could not override '([^']+)'", str(exc)) or re.search(
        r"Key '([^']+)' (?:is )?not in", str(exc)
    )
    if match:
        key = match.group(1)
        full = next((o.split("=", 1)[0].lstrip("+~") for o in overrides if key in o), key)
        close = difflib.get_close_matches(full, known_keys(), n=1, cutoff=0.6)
        hint = (
            f" (did you mean {close[0]}?)" if close else " (`ticketml <command> --help` lists them)"
        )
        return f"unknown config key {full!r}{hint}"
    cause = exc.__cause__ or exc.__context__
    if text.startswith("Error merging override") and cause is not None:
        return (
            f"bad value in {text.removeprefix('Error merging override ')}: "
            + str(cause).splitlines()[0]
        )
    if "Could not find" in text:
        return text.removeprefix("In 'config': ") + " (see configs/ for the choices)"
    if "full_key:" in str(exc):
        key = re.search(r"full_key: (\S+)", str(exc)).group(1)
        return f"bad value for {key}: {text}"
    return f"bad configuration override: {text}"


def load_config(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose configs/config.yaml (typed by ticketml.settings, struct mode on) with `key=value`
    overrides; a misspelled key or a value of the wrong type is one ConfigError line."""
    try:
        return _compose(overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(explain(exc, overrides)) from exc


def flatten(cfg: DictConfig | dict, prefix: str = "") -> dict[str, object]:
    """Flatten a config to `a.b.c -> value` (for MLflow params)."""
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    out: dict[str, object] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, prefix=f"{name}."))
        else:
            out[name] = value
    return out
