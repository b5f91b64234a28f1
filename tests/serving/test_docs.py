"""The API without a network or a model: /docs offline (Swagger UI from the package, not a CDN; issue 24) and error bodies that do not grow with the input (issue 25.8)."""

from fastapi.testclient import TestClient

from ticketml.serving.app import create_app


def _no_model():
    raise FileNotFoundError("no model here")


def test_docs_page_and_its_assets_are_served_locally_even_with_an_api_key():
    api = TestClient(create_app(_no_model, background=False, api_key="k"))
    page = api.get("/docs")
    assert page.status_code == 200 and "cdn.jsdelivr.net" not in page.text
    assert "/docs/assets/swagger-ui-bundle.js" in page.text and "/openapi.json" in page.text
    js = api.get("/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 500_000  # the real bundle
    assert api.get("/docs/assets/swagger-ui.css").status_code == 200
    assert api.get("/openapi.json").json()["info"]["title"] == "ticketml"
    assert api.get("/redoc").status_code == 404  # ReDoc would need a CDN: not offered
    assert api.post("/predict", json={"text": "x"}).status_code == 401  # the key still guards


def test_a_body_of_many_bad_items_gets_a_short_422():
    api = TestClient(create_app(_no_model, background=False))
    answer = api.post("/predict/batch", json={"texts": list(range(5000))})
    assert answer.status_code == 422 and len(answer.content) < 5000
    body = answer.json()
    assert body["error_count"] == 5000 and len(body["errors"]) == 20
    assert body["detail"].startswith("texts.0: ")


def test_a_streamed_body_over_the_limit_is_a_413_not_a_parse_error():
    api = TestClient(create_app(_no_model, background=False, max_body_bytes=10_000))

    def chunks():  # no Content-Length: sent chunked, counted while read
        yield b'{"texts": ["'
        for _ in range(50):
            yield b"x" * 1000
        yield b'"]}'

    answer = api.post(
        "/predict/batch", content=chunks(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413
    assert answer.json()["detail"] == "request body over serve.max_body_bytes=10000"
