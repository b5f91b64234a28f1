"""MLflow pyfunc model: wraps the core's TicketClassifier.

`ticketml register` bundles this package under a name of its own (`ticketml_model_<code hash>`)
and logs a two-line models-from-code script that imports TicketMLModel from it (see
ticketml.registry.bundle_code): a registered version always runs the code it was registered with.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd

from .core import TicketClassifier


def texts_from_input(model_input) -> list[str]:
    """Accept a DataFrame/records with `text`, a dict {"text": [...]}, a list of strings or a string."""
    if isinstance(model_input, pd.DataFrame):
        if "text" not in model_input.columns:
            if model_input.shape[1] == 1:  # e.g. a bare list of strings becomes column 0
                return model_input.iloc[:, 0].astype(str).tolist()
            raise ValueError(
                f"input needs a 'text' column; columns found: {list(model_input.columns)}"
            )
        return _flatten(model_input["text"].tolist())
    if isinstance(model_input, pd.Series):
        return model_input.astype(str).tolist()
    if isinstance(model_input, str):
        return [model_input]
    if isinstance(model_input, dict):
        value = model_input.get("text")
        if value is None:
            raise ValueError("input needs a 'text' field")
        return [value] if isinstance(value, str) else [str(v) for v in value]
    if isinstance(model_input, list | tuple):
        return [row["text"] if isinstance(row, dict) else str(row) for row in model_input]
    raise ValueError(f"unsupported input type {type(model_input).__name__}")


def _flatten(values: list) -> list[str]:
    """{"text": [a, b]} reaches predict as one row holding a list: score each element."""
    out: list[str] = []
    for value in values:
        if isinstance(value, list | tuple | np.ndarray):
            out.extend(str(v) for v in value)
        else:
            out.append(str(value))
    return out


class TicketMLModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        a = context.artifacts
        self.classifier = TicketClassifier(
            a["onnx_model"],
            a["tokenizer"],
            a["label_maps"],
            a["model_config"],
            a.get("calibration"),
            baseline_path=a.get("baseline"),
            hybrid_path=a.get("hybrid"),
        )

    def predict(self, context, model_input, params: dict | None = None) -> pd.DataFrame:
        min_confidence = (params or {}).get("min_confidence")
        rows = self.classifier.predict(texts_from_input(model_input), min_confidence=min_confidence)
        return pd.DataFrame(
            rows,
            columns=["topic", "priority", "topic_scores", "priority_scores"]
            + (["needs_review"] if min_confidence is not None else []),
        )
