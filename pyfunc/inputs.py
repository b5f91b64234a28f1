"""The input contract of the served model, the one every serving path applies: FastAPI, the
pyfunc model behind `mlflow models serve` / Spark / `mlflow.pyfunc.load_model`, and batch infer.

A text is a string, not blank (whitespace, invisible format characters such as U+200B and
control characters such as NUL do not count), without lone UTF-16 surrogates (JSON and pandas
refuse them on the way in anyway), and, where the path sets a limit (FastAPI's
serve.max_text_chars), at most that long. A NUL inside a text is cleaned like any other
character (pyfunc.text); a text longer than the model's text transform allows is cut to its
two ends there, on every path.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence

from .text import SURROGATE


class InputError(ValueError):
    """A text the model refuses: `index` (which text, None for the input as a whole), `reason`
    (what is wrong with it) and `status`, the HTTP answer (422, or 413 when too long)."""

    def __init__(self, message: str, status: int = 422, index: int | None = None, reason=None):
        super().__init__(message)
        self.status, self.index, self.reason = status, index, reason or message


# a refusal as `check_texts` words it, for a caller that only sees it inside another error's
# text (a failed Spark task)
REFUSAL = re.compile(
    r"text(?:\[\d+\])? (?:is (?:empty|(?:null|a [\w ]+?), not a string)"
    r"|contains a lone UTF-16 surrogate)"
)


def is_blank(text: str) -> bool:
    return not any(not c.isspace() and unicodedata.category(c) not in ("Cf", "Cc") for c in text)


def kind_of(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def check_texts(
    texts: Sequence[object], max_chars: int | None = None, limit_name: str = "max_chars"
) -> list[str]:
    """The texts, each checked; the first one refused raises InputError naming it (and the
    length limit by `limit_name`)."""
    for i, text in enumerate(texts):
        reason, status = problem(text, max_chars, limit_name)
        if reason:
            name = f"text[{i}]" if len(texts) > 1 else "text"
            raise InputError(f"{name} {reason}", status, i, reason)
    return list(texts)


def problem(
    text: object, max_chars: int | None = None, limit_name: str = "max_chars"
) -> tuple[str | None, int]:
    """(what is wrong with one text, its HTTP status), or (None, 200)."""
    if not isinstance(text, str):
        return f"is {kind_of(text)}, not a string", 422
    if SURROGATE.search(text):
        return "contains a lone UTF-16 surrogate (not valid Unicode text)", 422
    if is_blank(text):
        return "is empty", 422
    if max_chars and len(text) > max_chars:
        return f"is {len(text)} characters; the limit is {limit_name}={max_chars}", 413
    return None, 200
