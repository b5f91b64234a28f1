# ticketml REST API: FastAPI + the ONNX Runtime pyfunc core. Serving dependencies only (no torch).
# Build after `make demo` (or `ticketml export_onnx`) so artifacts/ holds the model:
#   docker build -t ticketml-api . && docker run -p 127.0.0.1:8000:8000 ticketml-api
# Or serve a registered model from a tracking server instead of the baked-in one:
#   docker run -p 127.0.0.1:8000:8000 -e MODEL_URI=models:/ticketml@champion \
#     -e MLFLOW_TRACKING_URI=http://mlflow:8080 ticketml-api
# Or mount an exported model over the baked-in one: -v "$PWD/artifacts:/app/artifacts:ro".
# Behind a TLS-inspecting proxy, put its CA certificate(s) as docker/ca/*.crt: the build stage
# trusts them for pip; the image that runs does not carry them.
# No registry at all: `make docker-base` builds python:3.11-slim locally first.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY docker/ca/ /usr/local/share/ca-certificates/
RUN if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then update-ca-certificates; fi
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements-serve.txt .
RUN pip install --cert /etc/ssl/certs/ca-certificates.crt -r requirements-serve.txt
COPY pyproject.toml README.md ./
COPY ticketml ticketml
COPY pyfunc pyfunc
RUN pip install --cert /etc/ssl/certs/ca-certificates.crt --no-deps . \
 && find /opt/venv -name __pycache__ -type d -prune -exec rm -rf {} +
# The exported model: the export folder travels, the bundle's owner copies out exactly the files
# the served model needs (model_config.json "files"; pyfunc.bundle.copy_served)
COPY artifacts/ artifacts/
RUN python -c "from pyfunc.bundle import copy_served; copy_served('artifacts', '/served')"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH \
    MODEL_URI=artifacts PORT=8000
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Only the served files (a model mounted over /app/artifacts replaces them)
COPY --from=build /served artifacts/
# /app/predictions: the prediction log and feedback (serve.prediction_log; mount a volume to keep it)
RUN useradd --create-home --uid 10001 ticketml && mkdir /app/predictions \
 && chown ticketml /app /app/predictions
USER ticketml

EXPOSE 8000
# /ready: 200 only once a model is loaded and answered its smoke prediction
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=3).status != 200)"
# exec: the server is PID 1 and gets `docker stop`'s SIGTERM (a clean stop, exit 0)
CMD ["sh", "-c", "exec ticketml serve --host=0.0.0.0 --port=${PORT} serve.model_uri=${MODEL_URI}"]
