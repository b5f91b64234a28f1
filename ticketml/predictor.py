"""Load the inference core (pyfunc/core.py) from a model URI, or from artifacts/ as a fallback."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from omegaconf import DictConfig

from ticketml.errors import ModelError

log = logging.getLogger(__name__)


def use_int8(cfg: DictConfig, directory: str | Path | None = None) -> bool:
    """Which exported graph is served: `export.use_int8` true/false, or auto = INT8 if it exists."""
    from pyfunc.core import ONNX_INT8

    choice = cfg.export.use_int8
    if str(choice).lower() == "auto":
        return (Path(directory or cfg.paths.artifacts_dir) / ONNX_INT8).is_file()
    return bool(choice)


def export_folder(uri: str | None) -> Path | None:
    """`uri` as a folder written by `export_onnx` (model.onnx, no MLmodel), else None."""
    if not uri or uri.startswith(("models:/", "runs:/")) or "://" in uri:
        return None
    path = Path(uri)
    if not path.exists():
        raise ModelError(f"{uri}: no such model folder (nor a models:/ or runs:/ URI)")
    return None if (path / "MLmodel").is_file() else path


def load_predictor(cfg: DictConfig, model_uri: str | None = None):
    """(TicketClassifier, description). `models:/...` through MLflow; falls back to artifacts/."""
    from pyfunc.core import TicketClassifier

    uri = model_uri or cfg.infer.model_uri
    directory = Path(cfg.paths.artifacts_dir) if uri in (None, "artifacts") else export_folder(uri)
    if directory is None:
        import mlflow

        from ticketml.tracking import resolve_uri

        mlflow.set_tracking_uri(resolve_uri(cfg))
        try:
            with (
                warnings.catch_warnings()
            ):  # "add type hints to predict": our input is validated by the core
                warnings.simplefilter("ignore", UserWarning)
                model = mlflow.pyfunc.load_model(uri)
            classifier = model.unwrap_python_model().classifier
            classifier.batch_size = int(cfg.infer.batch_size)
            return classifier, uri
        except Exception as exc:  # noqa: BLE001 - no registry entry / store: fall back below
            if not uri.startswith("models:/") or model_uri:
                raise ModelError(f"cannot load model {uri}: {exc}") from exc
            log.warning(
                "cannot load %s (%s); using %s/",
                uri,
                str(exc).splitlines()[0],
                cfg.paths.artifacts_dir,
            )
        directory = Path(cfg.paths.artifacts_dir)
    try:
        classifier = TicketClassifier.from_dir(
            directory, int8=use_int8(cfg, directory), batch_size=int(cfg.infer.batch_size)
        )
    except FileNotFoundError as exc:
        raise ModelError(f"no model to load: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime / JSON errors of a damaged export
        raise ModelError(f"cannot load the model in {directory}: {exc}") from exc
    return classifier, str(directory)
