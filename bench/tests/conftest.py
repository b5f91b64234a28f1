"""The benchmarks' own tests (their logic, not the product's) use the product suite's fixtures:
the isolated environment every test gets and an empty working directory."""

from tests.conftest import _env, workdir  # noqa: F401
