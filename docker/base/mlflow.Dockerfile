# ghcr.io/mlflow/mlflow:v<version> rebuilt locally (docker/base/build.sh): the official image is a
# Python slim image with `pip install mlflow==<version>`; so is this one.
FROM python:3.11-slim
ARG MLFLOW_VERSION=3.17.2
RUN pip install --no-cache-dir "mlflow==${MLFLOW_VERSION}"
CMD ["mlflow", "--help"]
