"""The API's request and response models, and the errors each route documents."""

from __future__ import annotations

from pydantic import BaseModel, Field, StrictStr

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
        429: "too many texts being scored at once (serve.max_inflight_texts): retry after Retry-After",
        503: "model not loaded (yet, or it failed: see /ready)",
    }
    return {code: {"model": Error, "description": meaning[code]} for code in codes}


class Prediction(BaseModel):
    topic: str = Field(description="the triage decision (balanced rule, see topic_scores)")
    priority: str = Field(description="the triage decision (balanced rule, see priority_scores)")
    topic_scores: dict[str, float] = Field(
        description="calibrated probability per topic; a close call can label a rare topic "
        "whose score is a close second"
    )
    priority_scores: dict[str, float] = Field(description="calibrated probability per priority")
    needs_review: bool | None = Field(
        default=None, description="the topic label's probability is below min_confidence"
    )


class BatchPrediction(BaseModel):
    predictions: list[Prediction]


class FeedbackRequest(BaseModel):
    request_id: StrictStr | None = Field(
        None, description="the X-Request-Id of the answer being corrected (a batch item: id:index)"
    )
    text: StrictStr | None = Field(None, description="or the ticket text itself")
    topic: StrictStr | None = Field(None, description="the correct topic")
    priority: StrictStr | None = Field(None, description="the correct priority")


class FeedbackAnswer(BaseModel):
    key: str = Field(description="what the correction is stored under (request id or text hash)")
    stored: str = Field(description="new, or replaced (a correction for this key was there)")
