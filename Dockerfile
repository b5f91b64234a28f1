# ticketml REST API: FastAPI + the ONNX Runtime pyfunc core. Serving dependencies only (no torch).
# Build after `make demo` (or `ticketml export_onnx`) so artifacts/ holds the model:
#   docker build -t ticketml-api . && docker run -p 8000:8000 ticketml-api
# Or serve a registered model from a tracking server instead of the baked-in one:
#   docker run -p 8000:8000 -e MODEL_URI=models:/ticketml@champion -e MLFLOW_TRACKING_URI=http://mlflow:8080 ticketml-api
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    TICKETML_CONFIG_DIR=/app/configs MODEL_URI=artifacts PORT=8000
WORKDIR /app

COPY requirements-serve.txt .
COPY pyfunc/requirements.txt pyfunc/requirements.txt
RUN pip install -r requirements-serve.txt

COPY pyproject.toml README.md ./
COPY ticketml ticketml
COPY pyfunc pyfunc
COPY configs configs
RUN pip install --no-deps .

# The exported model (see .dockerignore: only the serving files travel).
COPY artifacts/ artifacts/

RUN useradd --create-home --uid 10001 ticketml && chown -R ticketml /app
USER ticketml

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=3).status != 200)"
CMD ["sh", "-c", "exec ticketml serve --host=0.0.0.0 --port=${PORT} serve.model_uri=${MODEL_URI}"]
