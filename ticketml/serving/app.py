"""FastAPI service: a thin HTTP layer over the pyfunc core (no torch)."""

from __future__ import annotations

import logging
import os
import threading
import time

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
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
    model: str | None = Field(None, description="the model serving, in words (when ready)")
    model_uri: str | None = Field(None, description="what serve.model_uri asked for")
    model_name: str | None = Field(None, description="registered model name")
    model_version: str | None = Field(None, description="registered model version serving")
    run_id: str | None = Field(None, description="the MLflow run the version was logged in")
    reload_error: str | None = Field(
        None, description="why the last reload failed (the previous version keeps serving)"
    )
    reason: str | None = Field(None, description="why not ready: loading, or the load error")


class Reloaded(BaseModel):
    result: str = Field(description="what the reload did")
    model: str = Field(description="the model serving now")


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


class FixedSource:
    """A model source that cannot move: `loader()` returns (classifier, identity or text)."""

    def __init__(self, loader):
        self.loader = loader

    def current(self):
        return None

    def load(self, identity=None):
        return self.loader()


def as_identity(value):
    from ticketml.predictor import ModelIdentity

    return value if isinstance(value, ModelIdentity) else ModelIdentity(uri=str(value))


class ModelState:
    """The model loads in the background so /health answers at once and /ready reports progress.
    `current` is one (classifier, identity) pair, replaced whole: a request reads it once and is
    answered, and labelled, by that one model even while a new version is swapped in."""

    def __init__(self, source):
        self.source = source
        self.current: tuple | None = None
        self.error: str | None = None
        self.reload_error: str | None = None
        self.lock = threading.Lock()
        self.on_reload = lambda result: None  # metrics hook: "swapped", "unchanged", "failed"

    @property
    def classifier(self):
        return self.current[0] if self.current else None

    def load(self) -> None:
        try:
            classifier, identity = self.source.load()
            with self.lock:
                self.current = (classifier, as_identity(identity))
            log.info("model ready: %s", self.current[1].describe())
        except Exception as exc:  # noqa: BLE001 - reported by /ready, the process keeps serving
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("model failed to load: %s", self.error)

    def reload(self) -> str:
        """Load the version the source points to now, beside the one serving, and swap it in;
        on failure keep serving the old one and say why. Returns what happened."""
        try:
            target = self.source.current()
        except Exception as exc:  # noqa: BLE001 - a registry hiccup must not stop serving
            self.reload_error = f"cannot resolve {getattr(self.source, 'uri', '?')}: {exc}"
            self.on_reload("failed")
            return self.reload_error
        if target is None:
            return "the model source is fixed: nothing to follow"
        if self.current and self.current[1].version == target.version:
            self.on_reload("unchanged")
            return f"already serving version {target.version}"
        try:
            classifier, identity = self.source.load(target)
        except Exception as exc:  # noqa: BLE001 - keep the old model serving
            self.reload_error = f"version {target.version} failed to load: {exc}"
            log.error("reload: %s; still serving %s", self.reload_error, self.describe())
            self.on_reload("failed")
            return self.reload_error
        with self.lock:
            self.current = (classifier, as_identity(identity))
        self.error = self.reload_error = None
        log.info("reload: now serving %s", self.describe())
        self.on_reload("swapped")
        return f"now serving version {target.version}"

    def describe(self) -> str:
        return self.current[1].describe() if self.current else "nothing"

    def follow(self, interval_s: float) -> None:
        """Check the source every `interval_s` seconds (serve.reload_interval_s)."""
        while True:
            time.sleep(interval_s)
            if self.current is not None:
                self.reload()


def create_app(
    loader,
    max_batch: int = 64,
    max_text_chars: int = 20000,
    min_confidence: float | None = None,
    background: bool = True,
    api_key: str | None = None,
    max_body_bytes: int = 2 * 2**20,
    cors_origins: list[str] | None = None,
    reload_interval_s: float = 0,
    metrics_public: bool = False,
) -> FastAPI:
    """`loader` is a model source (`load(identity=None)` → (TicketClassifier, ModelIdentity),
    `current()` → the identity it points to now, see ticketml.predictor.ModelSource), or a plain
    callable returning (TicketClassifier, description) for a model that never moves."""
    from fastapi import Depends

    from ticketml.serving.metrics import Metrics, MetricsMiddleware
    from ticketml.serving.security import BodySizeLimit, require_api_key

    source = loader if hasattr(loader, "load") else FixedSource(loader)
    state = ModelState(source)
    metrics = Metrics()
    state.on_reload = metrics.reload
    open_paths = ("/metrics",) if metrics_public else ()
    app = FastAPI(
        title="ticketml",
        version="0.1.0",
        description="Topic and priority for support tickets",
        dependencies=[Depends(require_api_key(api_key, extra_open=open_paths))],
    )
    app.state.model = state
    app.add_middleware(BodySizeLimit, max_bytes=int(max_body_bytes))
    app.add_middleware(
        MetricsMiddleware,
        metrics=metrics,
        version_of=lambda: (state.current[1].version or "-") if state.current else "none",
    )
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
    if reload_interval_s and reload_interval_s > 0:
        threading.Thread(target=state.follow, args=(float(reload_interval_s),), daemon=True).start()

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

    def classify(texts: list[str], response: Response, endpoint: str) -> list[dict]:
        current = state.current  # one read: the answer and its labels come from one model
        if current is None:
            raise HTTPException(503, f"model not loaded: {state.error or 'loading'}")
        classifier, identity = current
        metrics.batch_size(endpoint, len(texts))
        response.headers.update(identity.headers())
        return classifier.predict(texts, min_confidence=min_confidence)

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
        current = state.current
        if current is None:
            return JSONResponse(
                status_code=503, content={"ready": False, "reason": state.error or "loading"}
            )
        identity = current[1]
        body = {
            "ready": True,
            "model": identity.describe(),
            "model_uri": identity.uri,
            "model_name": identity.name,
            "model_version": identity.version,
            "run_id": identity.run_id,
            "reload_error": state.reload_error,
        }
        return JSONResponse({k: v for k, v in body.items() if v is not None})

    @app.post(
        "/reload",
        response_model=Reloaded,
        responses=error_responses(401, 503),
        summary="load the version the model URI points to now (e.g. a moved @champion)",
    )
    def reload() -> dict:
        if state.current is None:
            raise HTTPException(503, f"model not loaded: {state.error or 'loading'}")
        message = state.reload()
        return {"result": message, "model": state.describe()}

    @app.get("/metrics", response_class=PlainTextResponse, responses=error_responses(401))
    def prometheus_metrics() -> PlainTextResponse:
        from ticketml.serving.metrics import CONTENT_TYPE

        identity = state.current[1] if state.current else None
        return PlainTextResponse(metrics.render(identity), media_type=CONTENT_TYPE)

    predict_route = {  # JSON in, documented errors out, optional fields left out when unset
        "response_model_exclude_none": True,
        "dependencies": [Depends(require_json)],
        "responses": error_responses(400, 401, 413, 415, 422, 503),
    }

    @app.post("/predict", response_model=Prediction, **predict_route)
    def predict(req: PredictRequest, response: Response) -> dict:
        check_texts([req.text])
        return classify([req.text], response, "/predict")[0]

    @app.post("/predict/batch", response_model=BatchPrediction, **predict_route)
    def predict_batch(
        req: BatchRequest, response: Response
    ) -> dict:  # an empty list is refused by BatchRequest
        if len(req.texts) > max_batch:
            raise HTTPException(
                413, f"{len(req.texts)} texts; the limit is serve.max_batch={max_batch}"
            )
        check_texts(req.texts)
        return {"predictions": classify(req.texts, response, "/predict/batch")}

    return app


def build_app(cfg, background: bool = True) -> FastAPI:
    from ticketml.predictor import ModelSource

    s = cfg.serve
    return create_app(
        ModelSource(cfg, s.model_uri),
        max_batch=int(s.max_batch),
        max_text_chars=int(s.max_text_chars),
        min_confidence=s.min_confidence,
        background=background,
        api_key=os.environ.get("TICKETML_API_KEY") or s.api_key,
        max_body_bytes=int(s.max_body_bytes),
        cors_origins=list(s.cors_origins or []),
        reload_interval_s=float(s.reload_interval_s or 0),
        metrics_public=bool(s.metrics_public),
    )


def run_serve(cfg, port: str | None = None, host: str | None = None) -> None:
    import uvicorn

    uvicorn.run(
        build_app(cfg),
        host=host or cfg.serve.host,
        port=int(port or cfg.serve.port),
        log_level="info",
    )
