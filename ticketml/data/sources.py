"""download_data: local file → `dvc pull` → fallback URL → synthetic, in that order."""

from __future__ import annotations

import logging
import shutil
import subprocess
import urllib.request
from pathlib import Path

from omegaconf import DictConfig

from ticketml.data import synthetic
from ticketml.errors import DataError
from ticketml.io import atomic_path, check_readable_file, table_format, write_json, write_table

log = logging.getLogger(__name__)
SYNTHETIC_WARNING = "WARNING: SYNTHETIC FALLBACK: Generating synthetic dataset for smoke-run only"
SOURCES = ("auto", "local", "dvc", "url", "synthetic")


def raw_path(cfg: DictConfig, suffix: str = ".csv") -> Path:
    return Path(cfg.paths.raw_dir) / f"{cfg.data.name}{suffix}"


def find_raw(cfg: DictConfig) -> Path:
    """The raw file download_data wrote for the current dataset."""
    for suffix in (".parquet", ".csv"):
        if raw_path(cfg, suffix).is_file():
            return raw_path(cfg, suffix)
    raise DataError(
        f"no raw data for dataset {cfg.data.name!r} in {cfg.paths.raw_dir}/ (run download_data first)"
    )


def _from_local(cfg: DictConfig) -> Path | None:
    if not cfg.data.path:
        return None
    src = check_readable_file(cfg.data.path)
    suffix = "." + table_format(src, cfg.data.format)
    dest = raw_path(cfg, suffix)
    if src.resolve() != dest.resolve():
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
    return dest


def _dvc_remote_configured() -> bool:
    try:
        out = subprocess.run(["dvc", "remote", "list"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and bool(out.stdout.strip())


def _from_dvc(cfg: DictConfig) -> Path | None:
    for suffix in (".csv", ".parquet"):
        target = raw_path(cfg, suffix)
        pointer = target.with_name(target.name + ".dvc")
        if not pointer.is_file():
            continue
        if not _dvc_remote_configured():
            log.warning("%s is DVC-tracked but no DVC remote is configured", target)
            return None
        proc = subprocess.run(
            ["dvc", "pull", str(pointer)], capture_output=True, text=True, timeout=600
        )
        if proc.returncode == 0 and target.is_file():
            return target
        log.warning("dvc pull %s failed: %s", pointer, (proc.stderr or proc.stdout).strip()[-300:])
    return None


def _from_url(cfg: DictConfig) -> Path | None:
    url = cfg.data.url
    if not url:
        return None
    dest = raw_path(cfg, "." + table_format(url.split("?")[0], cfg.data.format))
    try:
        with (
            urllib.request.urlopen(url, timeout=cfg.data.url_timeout_s) as resp,
            atomic_path(dest) as tmp,
        ):
            with open(tmp, "wb") as fh:
                shutil.copyfileobj(resp, fh)
    except (OSError, DataError) as exc:
        log.warning("download of %s failed: %s", url, exc)
        return None
    return dest


def _from_synthetic(cfg: DictConfig) -> Path:
    """The generated export as data/raw/<name>.csv, and what each text was written from beside
    it (evaluate's ceiling row reads it instead of generating the export again)."""
    print(SYNTHETIC_WARNING, flush=True)
    frame = synthetic.from_config(cfg, latents=True)
    write_table(frame[["text", *synthetic.LATENTS]], synthetic.latents_path(cfg))
    return write_table(frame.drop(columns=synthetic.LATENTS), raw_path(cfg, ".csv"))


def source_record(cfg: DictConfig) -> Path:
    return Path(cfg.paths.raw_dir) / f"{cfg.data.name}.source.json"


def generated(cfg: DictConfig) -> bool:
    """Whether the current dataset's raw file came from the synthetic generator."""
    import json

    path = source_record(cfg)
    return path.is_file() and json.loads(path.read_text()).get("source") == "synthetic"


def download_data(cfg: DictConfig) -> Path:
    """Obtain the raw export for `cfg.data` and return its path under data/raw/."""
    source = cfg.data.source
    if source not in SOURCES:
        raise DataError(f"data.source={source!r} is not one of {', '.join(SOURCES)}")
    if source == "local" and not cfg.data.path:
        raise DataError("data.source=local needs data.path=<file>")
    if source == "url" and not cfg.data.url:
        raise DataError("data.source=url needs data.url=<address>")
    steps = {"local": _from_local, "dvc": _from_dvc, "url": _from_url}
    order = list(steps) if source == "auto" else [source] if source != "synthetic" else []
    path = None
    for name in order:
        path = steps[name](cfg)
        if path is not None:
            log.info("raw data from %s: %s", name, path)
            break
    if path is None:
        if source not in ("auto", "synthetic"):
            raise DataError(f"data.source={source}: could not obtain the data (see warnings above)")
        path, name = _from_synthetic(cfg), "synthetic"
    # The raw file of the other format would shadow this one in find_raw().
    for stale in {raw_path(cfg, ".csv"), raw_path(cfg, ".parquet")} - {path}:
        stale.unlink(missing_ok=True)
    write_json({"source": name, "path": str(path)}, source_record(cfg))
    print(f"raw data ({name}): {path}")
    return path
