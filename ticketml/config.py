"""Hydra composition: the single way code gets settings (no working-directory change)."""

from __future__ import annotations

import ast
import os
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ticketml.errors import ConfigError


def config_dir() -> Path:
    """`$TICKETML_CONFIG_DIR`, else ./configs, else the repository's configs/."""
    candidates = [os.environ.get("TICKETML_CONFIG_DIR"), "configs"]
    candidates.append(str(Path(__file__).resolve().parent.parent / "configs"))
    for cand in candidates:
        if cand and (Path(cand) / "config.yaml").is_file():
            return Path(cand).resolve()
    raise ConfigError("no configs/config.yaml found (set TICKETML_CONFIG_DIR)")


def parse_overrides_option(value: str) -> list[str]:
    """Parse the original CLI's `--overrides='["a=b", "c=d"]'` (a list literal or one override)."""
    value = value.strip()
    if not value:
        return []
    if value.startswith("["):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError) as exc:
            raise ConfigError(f"--overrides is not a list of strings: {value}") from exc
        if not isinstance(parsed, list | tuple) or not all(isinstance(x, str) for x in parsed):
            raise ConfigError(f"--overrides is not a list of strings: {value}")
        return list(parsed)
    return [value]


def load_config(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose configs/config.yaml with `key=value` overrides."""
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"bad configuration override: {exc}") from exc
    OmegaConf.set_struct(cfg, False)
    return cfg


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
