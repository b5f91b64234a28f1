"""pyproject.toml holds compatible ranges, requirements.lock the tested set; every other list
of pins (the served model's, the API image's, conda.yaml) takes the lock's versions, and the
lock satisfies every range."""

from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins() -> dict[str, str]:
    """The lock: package name (canonical) -> the version tested."""
    return dict(_pin(line) for line in requirement_lines(ROOT / "requirements.lock"))


def _pin(line: str) -> tuple[str, str]:
    name, version = line.split("==")
    return canonicalize_name(name.split("[")[0]), version


def direct() -> list[Requirement]:
    return [Requirement(d) for d in project()["dependencies"]]


def test_the_lock_satisfies_every_range_and_pins_all_it_names():
    lock = pins()
    wanted = direct() + [
        Requirement(d) for ds in project()["optional-dependencies"].values() for d in ds
    ]
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in lock, f"{name} is not in requirements.lock"
        assert req.specifier.contains(lock[name], prereleases=True), (str(req), lock[name])
        assert not str(req.specifier).startswith("=="), f"{req}: a range, the lock pins"
    assert "dvc" not in {r.name for r in direct()} and "httpx" not in {r.name for r in direct()}


def requirement_lines(path: Path) -> list[str]:
    return [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith(("#", "-r"))
    ]


def test_serving_requirements_use_the_locked_versions():
    project = pins()
    for path in (ROOT / "pyfunc/requirements.txt", ROOT / "requirements-serve.txt"):
        for line in requirement_lines(path):
            name, version = _pin(line)
            assert project.get(name) == version, (path.name, line)
    served = requirement_lines(ROOT / "requirements-serve.txt")
    # the API image: the registry client, not MLflow's server stack; no torch, no pyarrow
    assert not [line for line in served if line.startswith(("torch", "transformers", "pyarrow"))]
    assert "mlflow-skinny==" + project["mlflow"] in served
    assert not [line for line in served if line.startswith("mlflow==")]
    # the registered model's own environment: mlflow-skinny too (less than half of full mlflow)
    model = requirement_lines(ROOT / "pyfunc/requirements.txt")
    assert any(line.startswith("mlflow-skinny==") for line in model)
    assert not [line for line in model if line.startswith("mlflow==")]


def test_conda_yaml_lists_the_direct_dependencies_at_the_locked_versions():
    env = yaml.safe_load((ROOT / "conda.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = dict(_pin(p) for p in pip if "==" in p)
    lock = pins()
    names = [canonicalize_name(r.name) for r in direct()]
    assert listed == {n: lock[n] for n in names} and "-e ." in pip
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
