# The compose stack's MLflow server: the official MLflow image plus the PostgreSQL driver (the one
# the no-Docker stack pins), installed at build time so the server starts offline.
# Behind a TLS-inspecting proxy: its CA certificate(s) as docker/ca/*.crt (see ../Dockerfile).
FROM ghcr.io/mlflow/mlflow:v3.17.2
COPY ca/ /usr/local/share/ca-certificates/
RUN if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then update-ca-certificates; fi \
 && pip install --no-cache-dir --cert /etc/ssl/certs/ca-certificates.crt "psycopg[binary]==3.3.9"
EXPOSE 8080
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "8080", "--workers", "1", \
     "--artifacts-destination", "/mlflow/artifacts"]
