"""FastAPI service: a thin HTTP layer over the pyfunc core (no torch)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pyfunc import inputs
from ticketml.serving.schemas import (
    BatchPrediction,
    BatchRequest,
    FeedbackAnswer,
    FeedbackRequest,
    Health,
    Prediction,
    PredictRequest,
    Ready,
    Reloaded,
    error_responses,
)
from ticketml.serving.security import BodyTooLarge
from ticketml.serving.state import Admission, FixedSource, ModelState

log = logging.getLogger(__name__)
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,100}(?::[0-9]{1,4})?")  # ours: 32 hex (+ :index)


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
    max_inflight_texts: int = 128,
    prediction_log=None,
    feedback=None,
) -> FastAPI:
    """`loader` is a model source (`load(identity=None)` → (TicketClassifier, ModelIdentity),
    `current()` → the identity it points to now, see ticketml.predictor.ModelSource), or a plain
    callable returning (TicketClassifier, description) for a model that never moves.
    `prediction_log` (ticketml.monitoring.store.PredictionLog) records every prediction;
    `feedback` (FeedbackStore) takes agents' corrections at POST /feedback."""
    from ticketml.serving.metrics import Metrics

    source = loader if hasattr(loader, "load") else FixedSource(loader)
    state = ModelState(source)
    metrics = Metrics()
    state.on_reload = metrics.reload
    app = new_app(state, prediction_log, api_key, ("/metrics",) if metrics_public else ())
    offline_docs(app)
    app.state.model = state
    install_middleware(app, state, metrics, max_body_bytes, cors_origins)
    start_model(state, background, reload_interval_s)
    install_error_handlers(app)
    operator_routes(app, state, metrics, prediction_log)
    app.state.admission = Admission(max_inflight_texts)
    metrics.in_flight(app.state.admission)
    app.state.prediction_log = prediction_log
    answer = Answerer(state, metrics, app.state.admission, min_confidence, prediction_log)
    prediction_routes(app, answer, max_batch, max_text_chars)
    if feedback is not None:
        feedback_route(app, state, feedback)

    return app


def new_app(state, prediction_log, api_key: str | None, open_paths: tuple) -> FastAPI:
    """The FastAPI app: its API key check (`open_paths` answer without one) and a lifespan that
    ends the reload loop and flushes the prediction log when the server stops."""
    from fastapi import Depends

    from ticketml.serving.security import require_api_key

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        state.stopped.set()  # the reload loop (serve.reload_interval_s) ends with the app
        if prediction_log is not None:  # what was answered is written before the process ends
            prediction_log.flush()  # (the writer stays: an app can be started again, in tests)

    return FastAPI(
        lifespan=lifespan,
        title="ticketml",
        version="0.1.0",
        description="Topic and priority for support tickets",
        dependencies=[Depends(require_api_key(api_key, extra_open=open_paths))],
        docs_url=None,  # /docs below serves Swagger UI from the package, not from a CDN
        redoc_url=None,
    )


def install_middleware(app: FastAPI, state, metrics, max_body_bytes: int, cors_origins) -> None:
    """The body size limit, the request metrics (labelled with the version serving) and, where
    origins are given, CORS."""
    from ticketml.serving.metrics import MetricsMiddleware
    from ticketml.serving.security import BodySizeLimit

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


def start_model(state, background: bool, reload_interval_s: float) -> None:
    """The first load (in the background: /ready answers 503 until it is done) and, with
    `reload_interval_s`, the loop that follows the model source."""
    if background:
        threading.Thread(target=state.load, daemon=True).start()
    else:
        state.load()
    if reload_interval_s and reload_interval_s > 0:
        threading.Thread(target=state.follow, args=(float(reload_interval_s),), daemon=True).start()


DOCS_ASSETS = "/docs/assets"


def offline_docs(app: FastAPI) -> None:
    """/docs with Swagger UI's files from the swagger-ui-bundle package: FastAPI's default loads
    them from a CDN, so behind a firewall or offline /docs was a blank page."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} - API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )


MAX_ERRORS = 20


def install_error_handlers(app: FastAPI) -> None:
    """Every bad request gets a 4xx with a one-line `detail` saying what was wrong."""

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
        # the first MAX_ERRORS only: a body of a million bad items is not answered with a
        # million errors (the answer would outgrow the request)
        content = {"detail": message, "errors": errors[:MAX_ERRORS], "error_count": len(errors)}
        return JSONResponse(status_code=422, content=content)

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
        if exc.status_code == 400 and isinstance(cause, BodyTooLarge):  # a streamed body
            return JSONResponse(status_code=413, content={"detail": str(cause)})
        if exc.status_code == 400 and isinstance(cause, RecursionError):
            return JSONResponse(
                status_code=400, content={"detail": "request body JSON is nested too deeply"}
            )
        return await http_exception_handler(request, exc)


def operator_routes(app: FastAPI, state: ModelState, metrics, prediction_log=None) -> None:
    """/health, /ready (what serves), /reload (follow a moved alias), /metrics (Prometheus)."""

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
        return PlainTextResponse(metrics.render(identity, prediction_log), media_type=CONTENT_TYPE)


async def require_json(request: Request) -> None:
    """A dependency of the JSON endpoints: any other Content-Type is a 415 saying which."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise HTTPException(415, f"Content-Type must be application/json, got {kind or 'none'!r}")


def checked(texts: list[str], max_text_chars: int) -> list[str]:
    """`texts` when they meet the served model's own contract (pyfunc.inputs) with this
    service's limit; else the 4xx that names what is wrong."""
    try:
        return inputs.check_texts(texts, max_text_chars, "serve.max_text_chars")
    except inputs.InputError as exc:
        raise HTTPException(exc.status, str(exc)) from exc


class Answerer:
    """Answers checked texts with one model: admitted under serve.max_inflight_texts (else 429),
    labelled by the model that scored them (X-Model-* headers), under X-Request-Id (the caller's
    when valid), counted in the metrics and, with a prediction log, recorded."""

    def __init__(
        self, state: ModelState, metrics, admission: Admission, min_confidence, prediction_log=None
    ) -> None:
        self.state, self.metrics, self.admission = state, metrics, admission
        self.min_confidence, self.prediction_log = min_confidence, prediction_log

    def __call__(
        self, texts: list[str], request: Request, response: Response, endpoint: str
    ) -> list[dict]:
        from ticketml.monitoring.features import vocabulary_of
        from ticketml.monitoring.store import new_request_id

        current = self.state.current  # one read: the answer and its labels come from one model
        if current is None:
            raise HTTPException(503, f"model not loaded: {self.state.error or 'loading'}")
        classifier, identity = current
        admission = self.admission
        if not admission.admit(len(texts)):
            raise HTTPException(
                429,
                f"{admission.in_flight} texts are being scored; {len(texts)} more would pass "
                f"serve.max_inflight_texts={admission.limit}: retry shortly",
                headers={"Retry-After": "1"},
            )
        try:
            self.metrics.batch_size(endpoint, len(texts))
            asked = request.headers.get("x-request-id", "")
            request_id = asked if REQUEST_ID.fullmatch(asked) else new_request_id()
            response.headers.update(identity.headers() | {"X-Request-Id": request_id})
            started = time.perf_counter()
            rows = classifier.predict(texts, min_confidence=self.min_confidence)
            latency_ms = (time.perf_counter() - started) * 1000
            self.metrics.predicted(rows, identity.version or "-")
            if self.prediction_log is not None:
                self.prediction_log.submit(
                    rows, texts, request_id, identity, "api", latency_ms, vocabulary_of(classifier)
                )
            return rows
        finally:
            admission.release(len(texts))


def prediction_routes(app: FastAPI, answer: Answerer, max_batch: int, max_text_chars: int) -> None:
    """/predict and /predict/batch: checked (`checked`, the batch size), then answered
    (`Answerer`; a batch's items are logged as `<id>:<index>`)."""
    from fastapi import Depends

    predict_route = {  # JSON in, documented errors out, optional fields left out when unset
        "response_model_exclude_none": True,
        "dependencies": [Depends(require_json)],
        "responses": error_responses(400, 401, 413, 415, 422, 429, 503),
    }

    @app.post("/predict", response_model=Prediction, **predict_route)
    def predict(req: PredictRequest, request: Request, response: Response) -> dict:
        return answer(checked([req.text], max_text_chars), request, response, "/predict")[0]

    @app.post("/predict/batch", response_model=BatchPrediction, **predict_route)
    def predict_batch(
        req: BatchRequest, request: Request, response: Response
    ) -> dict:  # an empty list is refused by BatchRequest
        if len(req.texts) > max_batch:
            raise HTTPException(
                413, f"{len(req.texts)} texts; the limit is serve.max_batch={max_batch}"
            )
        texts = checked(req.texts, max_text_chars)
        return {"predictions": answer(texts, request, response, "/predict/batch")}


def feedback_route(app: FastAPI, state: ModelState, feedback) -> None:
    """POST /feedback: an agent's correction of a prediction (by its X-Request-Id) or of a text;
    the labels must be the serving model's. The same request id again replaces the first."""
    from fastapi import Depends

    @app.post(
        "/feedback",
        response_model=FeedbackAnswer,
        dependencies=[Depends(require_json)],
        responses=error_responses(400, 401, 413, 415, 422, 503),
        summary="the correct topic and/or priority of a prediction (by request id) or a text",
    )
    def give_feedback(req: FeedbackRequest) -> dict:
        if (req.request_id is None) == (req.text is None):
            raise HTTPException(422, "give exactly one of request_id (X-Request-Id) or text")
        if req.topic is None and req.priority is None:
            raise HTTPException(422, "give the correct topic, priority or both")
        if req.request_id is not None and not REQUEST_ID.fullmatch(req.request_id):
            raise HTTPException(422, f"request_id {req.request_id[:80]!r} is not an id we give")
        if req.text is not None and not req.text.strip():
            raise HTTPException(422, "text is blank")
        current = state.current
        if current is None:
            raise HTTPException(503, f"model not loaded: {state.error or 'loading'}")
        for task in ("topic", "priority"):
            value = getattr(req, task)
            valid = list(current[0].label_maps[task])
            if value is not None and value not in valid:
                raise HTTPException(
                    422, f"{task} {value[:80]!r} is not one of the model's: {', '.join(valid)}"
                )
        key, stored = feedback.put(req.request_id, req.text, req.topic, req.priority)
        return {"key": key, "stored": stored}


def prediction_log_of(cfg):
    """The prediction log and feedback store `serve.prediction_log` names (None, None: off)."""
    from ticketml.monitoring.store import FeedbackStore, PredictionLog

    if not cfg.serve.prediction_log:
        return None, None
    return PredictionLog.from_config(cfg), FeedbackStore(cfg.serve.prediction_log)


def build_app(cfg, background: bool = True) -> FastAPI:
    from ticketml.predictor import ModelSource

    s = cfg.serve
    prediction_log, feedback = prediction_log_of(cfg)
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
        max_inflight_texts=int(s.max_inflight_texts),
        prediction_log=prediction_log,
        feedback=feedback,
    )


def run_serve(cfg, port: str | None = None, host: str | None = None) -> None:
    """uvicorn until stopped. SIGTERM (`docker stop`, a rollout) and Ctrl-C are normal stops:
    uvicorn drains the requests in flight, and the command exits 0 (uvicorn raises the signal
    again once it has shut down; here that finds a handler that only says so)."""
    import signal

    import uvicorn

    stopped: list[str] = []

    def clean_stop(signum, frame) -> None:
        stopped.append(signal.Signals(signum).name)

    main_thread = threading.current_thread() is threading.main_thread()
    previous = (
        {sig: signal.signal(sig, clean_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        if main_thread
        else {}
    )
    try:
        uvicorn.run(
            build_app(cfg),
            host=host or cfg.serve.host,
            port=int(port or cfg.serve.port),
            log_level="info",
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopped:
        print(f"serve: stopped by {stopped[0]}, requests in flight answered")
