"""MLflow pyfunc model: wraps the core's TicketClassifier.

`ticketml register` bundles this package under a name of its own (`ticketml_model_<code hash>`)
and logs a two-line models-from-code script that imports TicketMLModel from it (see
ticketml.registry.bundle_code): a registered version always runs the code it was registered with.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd

from .bundle import ARTIFACT
from .core import TicketClassifier
from .inputs import InputError, check_texts
from .scoring import guard_scoring_server


def texts_from_input(model_input) -> list:
    """The values to score from a DataFrame/records with `text`, a dict {"text": [...]}, a list
    or a string, as they came (pyfunc.inputs.check_texts refuses what is not a usable text)."""
    if isinstance(model_input, pd.DataFrame):
        if "text" not in model_input.columns:
            if model_input.shape[1] == 1:  # e.g. a bare list of strings becomes column 0
                return _flatten(model_input.iloc[:, 0].tolist())
            raise InputError(
                f"input needs a 'text' column; columns found: {list(model_input.columns)}"
            )
        return _flatten(model_input["text"].tolist())
    if isinstance(model_input, pd.Series):
        return _flatten(model_input.tolist())
    if isinstance(model_input, str):
        return [model_input]
    if isinstance(model_input, dict):
        if "text" not in model_input:
            raise InputError("input needs a 'text' field")
        value = model_input["text"]
        return [value] if isinstance(value, str) or value is None else list(value)
    if isinstance(model_input, list | tuple):
        return [row.get("text") if isinstance(row, dict) else row for row in model_input]
    raise InputError(f"unsupported input type {type(model_input).__name__}")


def _flatten(values: list) -> list:
    """{"text": [a, b]} reaches predict as one row holding a list: score each element."""
    out: list = []
    for value in values:
        if isinstance(value, list | tuple | np.ndarray):
            out.extend(value)
        else:
            out.append(value)
    return out


class TicketMLModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        # the version's one artifact: a copy of the served bundle (pyfunc.bundle.copy_served)
        self.classifier = TicketClassifier.from_dir(context.artifacts[ARTIFACT], int8=None)
        guard_scoring_server()  # inside `mlflow models serve`: unparsable bodies get a 400

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        """One row per text (the contract of pyfunc.inputs: a bad text is an error naming it,
        which `mlflow models serve` answers with a 400)."""
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        min_confidence = (params or {}).get("min_confidence")
        try:
            texts = check_texts(texts_from_input(model_input))
        except InputError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc
        rows = self.classifier.predict(texts, min_confidence=min_confidence)
        return pd.DataFrame(
            rows,
            columns=["topic", "priority", "topic_scores", "priority_scores"]
            + (["needs_review"] if min_confidence is not None else []),
        )
