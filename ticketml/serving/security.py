"""Optional API key, request-body size limit and CORS for the FastAPI service."""

from __future__ import annotations

import json
import secrets

from fastapi import HTTPException, Request

OPEN_PATHS = ("/health", "/docs", "/openapi.json", "/docs/oauth2-redirect")


def require_api_key(api_key: str | None, extra_open: tuple[str, ...] = ()):
    """A dependency: `Authorization: Bearer <api_key>` unless no key is configured (`/health`,
    the docs and `extra_open` paths stay open)."""
    open_paths = OPEN_PATHS + tuple(extra_open)
    # compared as bytes: compare_digest refuses non-ASCII str, and a header is bytes that ASGI
    # hands over decoded as latin-1, so a UTF-8 key sent as UTF-8 matches its UTF-8 bytes
    expected = api_key.encode("utf-8") if api_key else b""

    async def check(request: Request) -> None:
        if not api_key or request.url.path in open_paths:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        sent = token.strip().encode("latin-1", "replace")
        if scheme.lower() != "bearer" or not secrets.compare_digest(sent, expected):
            raise HTTPException(
                401,
                "missing or wrong API key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


class BodySizeLimit:
    """ASGI middleware: 413 for bodies over `max_bytes` (by Content-Length, or while streaming)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._reject(send)
        seen = 0

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(f"request body over serve.max_body_bytes={self.max_bytes}")
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLarge:  # raised where nothing caught it (FastAPI's reader answers 413)
            await self._reject(send)

    async def _reject(self, send) -> None:
        body = json.dumps(
            {"detail": f"request body over serve.max_body_bytes={self.max_bytes}"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    """A streamed (chunked) body passed serve.max_body_bytes while it was being read."""
