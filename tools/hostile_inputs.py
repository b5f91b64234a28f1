"""The hostile-input table for the FastAPI service: one place, used by the tests and by
bench/reliability.py (which writes the README's table). Each case is a request that must get the
given 4xx with a `detail` message, after which a valid request must still succeed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

JSON = {"Content-Type": "application/json"}
MAX_BATCH = 64  # serve.max_batch in configs/serve.yaml


@dataclass(frozen=True)
class Case:
    name: str
    status: int
    request: Callable[[], dict]  # keyword arguments for httpx / TestClient .post()
    path: str = "/predict"


def _raw(body: bytes, headers: dict | None = None) -> Callable[[], dict]:
    return lambda: {"content": body, "headers": JSON if headers is None else headers}


def _nested(depth: int) -> bytes:
    return b'{"text": ' + b"[" * depth + b"]" * depth + b"}"


HOSTILE: list[Case] = [
    Case("empty text", 422, lambda: {"json": {"text": ""}}),
    Case("whitespace-only text", 422, lambda: {"json": {"text": "   \n\t"}}),
    Case("missing field", 422, lambda: {"json": {"txt": "hello"}}),
    Case("null text", 422, lambda: {"json": {"text": None}}),
    Case("number instead of string", 422, lambda: {"json": {"text": 42}}),
    Case("list instead of string", 422, lambda: {"json": {"text": ["a", "b"]}}),
    Case("1 MB text (over serve.max_text_chars)", 413, lambda: {"json": {"text": "x" * 2**20}}),
    Case(
        "10 MB text (over serve.max_body_bytes)", 413, lambda: {"json": {"text": "x" * 10 * 2**20}}
    ),
    Case("invalid UTF-8 bytes", 400, _raw(b'{"text": "caf\xe9 \xff\xfe"}')),
    Case("lone surrogate (\\ud800)", 422, _raw(b'{"text": "VPN \\ud800 down"}')),
    Case("NUL-only text", 422, _raw(b'{"text": "\\u0000\\u0000"}')),
    Case("zero-width-only text", 422, _raw(b'{"text": "\\u200b\\u200b"}')),
    Case("deeply nested JSON (100k levels)", 400, _raw(_nested(100_000))),
    Case("truncated JSON", 422, _raw(b'{"text": ')),
    Case("JSON array instead of object", 422, lambda: {"json": [{"text": "hello"}]}),
    Case(
        "wrong content type (text/plain)",
        415,
        _raw(b'{"text": "hello"}', {"Content-Type": "text/plain"}),
    ),
    Case("form-encoded body", 415, lambda: {"data": {"text": "hello"}}),
    Case(
        f"batch of serve.max_batch + 1 ({MAX_BATCH + 1})",
        413,
        lambda: {"json": {"texts": ["VPN down"] * (MAX_BATCH + 1)}},
        "/predict/batch",
    ),
    Case("empty batch", 422, lambda: {"json": {"texts": []}}, "/predict/batch"),
    Case(
        "batch with one empty text",
        422,
        lambda: {"json": {"texts": ["VPN down", " "]}},
        "/predict/batch",
    ),
]

VALID = ("/predict", {"json": {"text": "VPN is down since this morning"}})
