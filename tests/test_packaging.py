"""Pins live in pyproject.toml; every other list of them agrees."""

from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent


def pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(d.lower().split("==") for d in deps)


def requirement_lines(path: Path) -> list[str]:
    return [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith(("#", "-r"))
    ]


def test_serving_requirements_use_the_project_pins():
    project = pins()
    project["mlflow-skinny"] = project["mlflow"]  # mlflow==X pins mlflow-skinny==X
    for path in (ROOT / "pyfunc/requirements.txt", ROOT / "requirements-serve.txt"):
        for line in requirement_lines(path):
            name, version = line.lower().split("==")
            assert project.get(name) == version, (path.name, line)
    served = requirement_lines(ROOT / "requirements-serve.txt")
    # the API image: the registry client, not MLflow's server stack; no torch, no pyarrow
    assert not [line for line in served if line.startswith(("torch", "transformers", "pyarrow"))]
    assert "mlflow-skinny==" + project["mlflow"] in served
    assert not [line for line in served if line.startswith("mlflow==")]


def test_conda_yaml_lists_exactly_the_project_pins():
    env = yaml.safe_load((ROOT / "conda.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = dict(p.lower().split("==") for p in pip if "==" in p)
    assert listed == pins() and "-e ." in pip
    assert "python=3.11" in env["dependencies"]


def test_the_registered_model_gets_the_serving_pins():
    from ticketml.registry import serving_requirements

    assert serving_requirements() == requirement_lines(ROOT / "pyfunc/requirements.txt")


def test_compose_runs_the_team_stack_without_committed_credentials():
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "mlflow", "api"} <= set(services)
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["mlflow"]
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "postgresql+psycopg://" in services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
    assert {"postgres-data", "mlflow-artifacts"} <= set(compose["volumes"])
    text = (ROOT / "docker-compose.yaml").read_text()
    assert "${TICKETML_DB_PASSWORD" in text and "change-me" not in text
    init = (ROOT / "scripts/postgres-init.sql").read_text()
    assert "CREATE DATABASE optuna" in init
