"""Load the inference core (pyfunc/core.py) from a model URI, or from artifacts/ as a fallback."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from ticketml.errors import ModelError

log = logging.getLogger(__name__)


def graph_choice(cfg: DictConfig) -> bool | None:
    """`export.use_int8` as pyfunc.bundle.load takes it: True/False, or None (auto) = the graph
    the export chose (model_config.json "files")."""
    choice = str(cfg.export.use_int8).lower()
    return None if choice == "auto" else choice == "true"


def export_folder(uri: str | None) -> Path | None:
    """`uri` as a folder written by `export_onnx` (model.onnx, no MLmodel), else None."""
    if not uri or uri.startswith(("models:/", "runs:/")) or "://" in uri:
        return None
    path = Path(uri)
    if not path.exists():
        raise ModelError(f"{uri}: no such model folder (nor a models:/ or runs:/ URI)")
    return None if (path / "MLmodel").is_file() else path


@dataclass(frozen=True)
class ModelIdentity:
    """Which model is loaded: what was asked for and, for the registry, the exact version."""

    uri: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None

    def describe(self) -> str:
        if self.version is None:
            return self.uri
        return f"{self.uri} = {self.name} version {self.version} (run {self.run_id})"

    def headers(self) -> dict[str, str]:
        return {
            "X-Model-Name": self.name or "-",
            "X-Model-Version": self.version or "-",
            "X-Model-Run-Id": self.run_id or "-",
            "X-Model-Uri": self.uri,
        }


def parse_registry_uri(uri: str) -> tuple[str, str | None, str | None] | None:
    """`models:/name@alias` → (name, None, alias); `models:/name/3` → (name, "3", None)."""
    if not uri.startswith("models:/"):
        return None
    rest = uri[len("models:/") :].strip("/")
    if "@" in rest:
        name, alias = rest.rsplit("@", 1)
        return name, None, alias
    name, _, version = rest.partition("/")
    return name, version or None, None


class ModelSource:
    """Where the served model comes from: a registry URI (an alias is resolved to a version
    each time `current()` is asked, so a moved @champion can be followed), a run, or an export
    folder; the default `models:/` URI falls back to artifacts/ when the registry has no entry
    for it (a version that exists and fails to load is an error, whichever the URI)."""

    def __init__(self, cfg: DictConfig, model_uri: str | None = None):
        self.cfg = cfg
        self.explicit = model_uri is not None
        self.uri = model_uri or cfg.infer.model_uri

    def current(self) -> ModelIdentity:
        """The version the URI points to now (raises MlflowException when the registry lacks it)."""
        parsed = parse_registry_uri(self.uri) if self.uri else None
        if parsed is None:
            return ModelIdentity(uri=str(self.uri or self.cfg.paths.artifacts_dir))
        import mlflow
        from mlflow import MlflowClient

        from ticketml.tracking import reach

        mlflow.set_tracking_uri(reach(self.cfg))  # a dead server: ConnectionError in seconds
        name, version, alias = parsed
        client = MlflowClient()
        mv = (
            client.get_model_version_by_alias(name, alias)
            if alias
            else client.get_model_version(name, version)
        )
        return ModelIdentity(uri=self.uri, name=name, version=str(mv.version), run_id=mv.run_id)

    def load(self, identity: ModelIdentity | None = None):
        """(TicketClassifier, ModelIdentity). A registry URI loads the exact version resolved
        (so the identity reported is the model loaded, even if the alias moves meanwhile)."""
        uri = self.uri
        directory = (
            Path(self.cfg.paths.artifacts_dir) if uri in (None, "artifacts") else export_folder(uri)
        )
        if directory is None:
            import mlflow

            resolved = False  # the registry named a version (its failure is then no fall-back)
            try:
                identity = identity or self.current()
                resolved = identity.version is not None
                target = f"models:/{identity.name}/{identity.version}" if identity.version else uri
                with warnings.catch_warnings():  # "add type hints to predict": the core validates
                    warnings.simplefilter("ignore", UserWarning)
                    model = mlflow.pyfunc.load_model(target)
                classifier = model.unwrap_python_model().classifier
                classifier.batch_size = int(self.cfg.infer.batch_size)
                if identity.run_id is None and uri.startswith("runs:/"):
                    identity = ModelIdentity(uri=uri, run_id=uri[len("runs:/") :].split("/")[0])
                return classifier, identity
            except Exception as exc:  # noqa: BLE001 - no registry entry / store: fall back below
                # only where the registry has no such model: a version that exists but does not
                # load (damaged, or refusing its smoke examples) is an error, never artifacts/
                if not uri.startswith("models:/") or self.explicit or resolved:
                    what = f"version {identity.version}" if resolved else uri
                    raise ModelError(f"cannot load model {uri} ({what}): {exc}") from exc
                log.warning(
                    "cannot load %s (%s); using %s/",
                    uri,
                    str(exc).splitlines()[0],
                    self.cfg.paths.artifacts_dir,
                )
            directory = Path(self.cfg.paths.artifacts_dir)
        return load_folder(self.cfg, directory), ModelIdentity(uri=str(directory))


def load_folder(cfg: DictConfig, directory: Path):
    from pyfunc.core import TicketClassifier

    try:
        return TicketClassifier.from_dir(
            directory, int8=graph_choice(cfg), batch_size=int(cfg.infer.batch_size)
        )
    except FileNotFoundError as exc:
        raise ModelError(f"no model to load: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime / JSON errors of a damaged export
        raise ModelError(f"cannot load the model in {directory}: {exc}") from exc


def load_predictor(cfg: DictConfig, model_uri: str | None = None):
    """(TicketClassifier, ModelIdentity) for `model_uri` (default infer.model_uri)."""
    return ModelSource(cfg, model_uri).load()
