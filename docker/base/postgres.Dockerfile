# postgres:16 rebuilt locally (docker/base/build.sh): PostgreSQL 16 from the pgserver wheel (its
# relocatable build of the server and client tools) behind an entrypoint with the official image's
# contract for what docker-compose.yaml uses.
FROM python:3.11-slim
RUN pip install --no-cache-dir pgserver==0.1.4 \
 && bin=$(python -c 'import pgserver, pathlib; print(pathlib.Path(pgserver.__file__).parent / "pginstall" / "bin")') \
 && ln -s "$bin"/* /usr/local/bin/ \
 && useradd --system --home-dir /var/lib/postgresql --create-home --shell /bin/sh postgres \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
