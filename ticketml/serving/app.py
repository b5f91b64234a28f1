"""FastAPI service: a thin HTTP layer over the pyfunc core (no torch)."""

from __future__ import annotations

import logging
import os
import threading

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from pyfunc.text import SURROGATE

log = logging.getLogger(__name__)


TEXT_RULES = (
    "non-blank, no NUL characters, at most serve.max_text_chars characters (longer → 413; "
    "texts under the limit are truncated to model.max_length tokens)"
)


class PredictRequest(BaseModel):
    text: StrictStr = Field(
        min_length=1,
        description=f"the ticket text: {TEXT_RULES}",
        examples=["Не могу подключиться к VPN с ноутбука"],
    )


class BatchRequest(BaseModel):
    texts: list[StrictStr] = Field(
        min_length=1,
        description=f"ticket texts, 1 to serve.max_batch of them, each {TEXT_RULES}",
        examples=[["VPN is down", "Refund please"]],
    )


class Error(BaseModel):
    detail: str = Field(description="what was wrong with the request, in one line")
    errors: list[dict] | None = Field(None, description="validation errors (422 only)")


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    model: str | None = Field(None, description="where the model was loaded from (when ready)")
    reason: str | None = Field(None, description="why not ready: loading, or the load error")


def error_responses(*codes: int) -> dict:
    """OpenAPI entries for the error answers a route can give, all with the `Error` body."""
    meaning = {
        400: "unreadable body (invalid UTF-8, nested too deeply)",
        401: "missing or wrong API key (when serve.api_key is set)",
        413: "body, text or batch over the configured limits",
        415: "Content-Type is not application/json",
        422: "the body does not match the schema, or a text is blank / has NUL or lone surrogates",
        503: "model not loaded (yet, or it failed: see /ready)",
    }
    return {code: {"model": Error, "description": meaning[code]} for code in codes}


class Prediction(BaseModel):
    topic: str
    priority: str
    topic_scores: dict[str, float]
    priority_scores: dict[str, float]
    needs_review: bool | None = None


class BatchPrediction(BaseModel):
    predictions: list[Prediction]


class ModelState:
    """The model loads in the background so /health answers at once and /ready reports progress."""

    def __init__(self, loader):
        self.loader, self.classifier, self.source, self.error = loader, None, None, None
        self.lock = threading.Lock()

    def load(self) -> None:
        try:
            classifier, source = self.loader()
            with self.lock:
                self.classifier, self.source = classifier, source
            log.info("model ready: %s", source)
        except Exception as exc:  # noqa: BLE001 - reported by /ready, the process keeps serving
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("model failed to load: %s", self.error)


def create_app(
    loader,
    max_batch: int = 64,
    max_text_chars: int = 20000,
    min_confidence: float | None = None,
    background: bool = True,
    api_key: str | None = None,
    max_body_bytes: int = 2 * 2**20,
    cors_origins: list[str] | None = None,
) -> FastAPI:
    """`loader()` returns (TicketClassifier, description)."""
    from fastapi import Depends

    from ticketml.serving.security import BodySizeLimit, require_api_key

    state = ModelState(loader)
    app = FastAPI(
        title="ticketml",
        version="0.1.0",
        description="Topic and priority for support tickets",
        dependencies=[Depends(require_api_key(api_key))],
    )
    app.state.model = state
    app.add_middleware(BodySizeLimit, max_bytes=int(max_body_bytes))
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    if background:
        threading.Thread(target=state.load, daemon=True).start()
    else:
        state.load()

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        raw = exc.errors()
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in raw]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        if raw and raw[0].get("type") == "json_invalid":
            reason = (raw[0].get("ctx") or {}).get("error", "JSON decode error")
            message = f"request body is not valid JSON: {reason} at byte {first['loc'][-1]}"
        else:
            message = f"{'.'.join(str(p) for p in first['loc'][1:]) or 'body'}: {first['msg']}"
        return JSONResponse(status_code=422, content={"detail": message, "errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def body_parse_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """FastAPI answers any unreadable body with 'There was an error parsing the body': say why."""
        cause = exc.__cause__
        if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError):
            return JSONResponse(
                status_code=400,
                content={
                    "detail": f"request body is not valid UTF-8 JSON: {cause.reason} "
                    f"(byte {cause.object[cause.start : cause.start + 1]!r} at {cause.start})"
                },
            )
        if exc.status_code == 400 and isinstance(cause, RecursionError):
            return JSONResponse(
                status_code=400, content={"detail": "request body JSON is nested too deeply"}
            )
        return await http_exception_handler(request, exc)

    async def require_json(request: Request) -> None:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise HTTPException(
                415, f"Content-Type must be application/json, got {kind or 'none'!r}"
            )

    def check_texts(texts: list[str]) -> None:
        for i, text in enumerate(texts):
            name = f"text[{i}]" if len(texts) > 1 else "text"
            if not text.strip():
                raise HTTPException(422, f"{name} is empty")
            if "\x00" in text:
                raise HTTPException(422, f"{name} contains a NUL character")
            if SURROGATE.search(text):
                raise HTTPException(
                    422, f"{name} contains a lone UTF-16 surrogate (not valid Unicode text)"
                )
            if len(text) > max_text_chars:
                raise HTTPException(
                    413,
                    f"text is {len(text)} characters; the limit is serve.max_text_chars={max_text_chars}",
                )

    def classify(texts: list[str]) -> list[dict]:
        if state.classifier is None:
            raise HTTPException(503, f"model not loaded: {state.error or 'loading'}")
        return state.classifier.predict(texts, min_confidence=min_confidence)

    @app.get("/health", response_model=Health)
    def health() -> dict:
        return {"status": "ok"}

    @app.get(
        "/ready",
        response_model=Ready,
        response_model_exclude_none=True,
        responses={503: {"model": Ready, "description": "not ready, with the reason"}}
        | error_responses(401),
    )
    def ready() -> JSONResponse:
        if state.classifier is None:
            return JSONResponse(
                status_code=503, content={"ready": False, "reason": state.error or "loading"}
            )
        return JSONResponse({"ready": True, "model": state.source})

    predict_route = {  # JSON in, documented errors out, optional fields left out when unset
        "response_model_exclude_none": True,
        "dependencies": [Depends(require_json)],
        "responses": error_responses(400, 401, 413, 415, 422, 503),
    }

    @app.post("/predict", response_model=Prediction, **predict_route)
    def predict(req: PredictRequest) -> dict:
        check_texts([req.text])
        return classify([req.text])[0]

    @app.post("/predict/batch", response_model=BatchPrediction, **predict_route)
    def predict_batch(req: BatchRequest) -> dict:  # an empty list is refused by BatchRequest
        if len(req.texts) > max_batch:
            raise HTTPException(
                413, f"{len(req.texts)} texts; the limit is serve.max_batch={max_batch}"
            )
        check_texts(req.texts)
        return {"predictions": classify(req.texts)}

    return app


def build_app(cfg, background: bool = True) -> FastAPI:
    from ticketml.predictor import load_predictor

    s = cfg.serve
    return create_app(
        lambda: load_predictor(cfg, s.model_uri),
        max_batch=int(s.max_batch),
        max_text_chars=int(s.max_text_chars),
        min_confidence=s.min_confidence,
        background=background,
        api_key=os.environ.get("TICKETML_API_KEY") or s.api_key,
        max_body_bytes=int(s.max_body_bytes),
        cors_origins=list(s.cors_origins or []),
    )


def run_serve(cfg, port: str | None = None, host: str | None = None) -> None:
    import uvicorn

    uvicorn.run(
        build_app(cfg),
        host=host or cfg.serve.host,
        port=int(port or cfg.serve.port),
        log_level="info",
    )
