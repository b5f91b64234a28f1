"""/docs works offline: Swagger UI's files come from the package, not a CDN (issue 24)."""

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
