"""FastAPI service: a thin HTTP layer over the pyfunc core (no torch)."""

from __future__ import annotations

import logging
import os
import threading

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictStr

log = logging.getLogger(__name__)


class PredictRequest(BaseModel):
    text: StrictStr = Field(
        description="the ticket text", examples=["Не могу подключиться к VPN с ноутбука"]
    )


class BatchRequest(BaseModel):
    texts: list[StrictStr] = Field(
        description="ticket texts", examples=[["VPN is down", "Refund please"]]
    )


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
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        message = f"{'.'.join(str(p) for p in first['loc'][1:]) or 'body'}: {first['msg']}"
        return JSONResponse(status_code=422, content={"detail": message, "errors": errors})

    def check_texts(texts: list[str]) -> None:
        for i, text in enumerate(texts):
            if not text.strip():
                raise HTTPException(
                    422, f"text[{i}] is empty" if len(texts) > 1 else "text is empty"
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

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> JSONResponse:
        if state.classifier is None:
            return JSONResponse(
                status_code=503, content={"ready": False, "reason": state.error or "loading"}
            )
        return JSONResponse({"ready": True, "model": state.source})

    @app.post("/predict", response_model=Prediction, response_model_exclude_none=True)
    def predict(req: PredictRequest) -> dict:
        check_texts([req.text])
        return classify([req.text])[0]

    @app.post("/predict/batch", response_model=BatchPrediction, response_model_exclude_none=True)
    def predict_batch(req: BatchRequest) -> dict:
        if not req.texts:
            raise HTTPException(422, "texts is empty")
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
