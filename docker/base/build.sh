#!/usr/bin/env bash
# Local base images for a machine that reaches Debian's and Python's package registries but no
# image registry (`make docker-base`). It builds, from Debian packages and PyPI alone, the images
# that ticketml's Dockerfiles and docker-compose.yaml start FROM, under the names those files use,
# so no `docker pull` is needed:
#   python:3.11-slim (+ python:<this venv's version>-slim, the tag `mlflow models build-docker` asks
#                    for): Debian 12's Python 3.11 with python, pip and venv, like the official one
#   ghcr.io/mlflow/mlflow:v3.17.2   that image + `pip install mlflow==3.17.2`, as the official one is
#   postgres:16      PostgreSQL 16 (the pgserver wheel's build) behind an entrypoint that honours
#                    the official image's POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB /
#                    PGDATA and /docker-entrypoint-initdb.d/*.sql|*.sh
# A test and offline-install tool: where a registry is reachable, pull the official images instead.
#
#   EXTRA_CA=<pem bundle>  certificates the images trust besides Debian's (a TLS-inspecting proxy's
#                          CA): only those of the bundle that Debian's lacks are added, into
#                          /usr/local/share/ca-certificates (they survive update-ca-certificates),
#                          and PIP_CERT points pip at the system bundle, so builds on these bases
#                          (MLflow's generated Dockerfile included) reach the package index.
#   FORCE=1                rebuild images that already exist (default: keep them).
#   SUITE / MIRROR         Debian suite (bookworm) and mirror (http://deb.debian.org/debian).
set -euo pipefail
PYTHON=${PYTHON:-python3}
PY_VERSION=$("$PYTHON" -c 'import platform; print(platform.python_version())')
PYTHON=$(command -v "$PYTHON")  # before the cd below: a relative path stays valid
if [[ -n "${EXTRA_CA:-}" ]]; then EXTRA_CA=$(realpath "$EXTRA_CA"); fi
cd "$(dirname "$0")"
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
MLFLOW_VERSION=${MLFLOW_VERSION:-3.17.2}
PYTHON_TAGS=("python:3.11-slim" "python:${PY_VERSION}-slim")
MLFLOW_TAG="ghcr.io/mlflow/mlflow:v${MLFLOW_VERSION}"
POSTGRES_TAG="postgres:16"

have() { [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$1" >/dev/null 2>&1; }
say() { echo "docker-base: $*"; }

command -v docker >/dev/null || { echo "docker-base: no docker CLI (apt-get install docker.io)" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "docker-base: the Docker daemon does not answer (start dockerd)" >&2; exit 1; }

if have "${PYTHON_TAGS[0]}"; then
    say "${PYTHON_TAGS[0]} exists (FORCE=1 rebuilds)"
else
    command -v debootstrap >/dev/null || { echo "docker-base: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
    [[ $(id -u) == 0 ]] || { echo "docker-base: debootstrap needs root" >&2; exit 1; }
    root=$(mktemp -d /tmp/ticketml-rootfs.XXXXXX)
    trap 'rm -rf "$root"' EXIT
    say "debootstrap $SUITE (minbase + python3, pip, venv, ca-certificates) into $root"
    debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
        "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
    rm -f "$root.log"
    ln -sf python3 "$root/usr/bin/python"
    # like the official image, pip installs into the system Python (no PEP 668 marker)
    rm -f "$root"/usr/lib/python3.*/EXTERNALLY-MANAGED
    env_lines=()
    if [[ -n "${EXTRA_CA:-}" ]]; then
        [[ -f "$EXTRA_CA" ]] || { echo "docker-base: EXTRA_CA=$EXTRA_CA is not a file" >&2; exit 1; }
        "$PYTHON" - "$EXTRA_CA" "$root/etc/ssl/certs/ca-certificates.crt" \
            "$root/usr/local/share/ca-certificates" <<'PY'
import re, sys
pem = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
theirs, debian, folder = sys.argv[1:]
known = set(pem.findall(open(debian).read()))
extra = [c for c in pem.findall(open(theirs).read()) if c not in known]
for i, cert in enumerate(extra):  # one per file, as update-ca-certificates wants them
    open(f"{folder}/ticketml-extra-{i}.crt", "w").write(cert + "\n")
print(f"docker-base: {len(extra)} certificate(s) of {theirs} added to Debian's")
PY
        chroot "$root" update-ca-certificates >/dev/null
        env_lines+=(--change "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt")
    fi
    # what the official slim image leaves out
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
        "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log "$root"/root/.cache
    say "importing ${PYTHON_TAGS[*]}"
    tar -C "$root" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' "${env_lines[@]}" \
        --change 'CMD ["python3"]' \
        --message "ticketml docker-base: Debian $SUITE python3" - "${PYTHON_TAGS[0]}" >/dev/null
    rm -rf "$root"
    trap - EXIT
fi
for tag in "${PYTHON_TAGS[@]:1}"; do
    docker tag "${PYTHON_TAGS[0]}" "$tag"
done

if have "$MLFLOW_TAG"; then
    say "$MLFLOW_TAG exists"
else
    say "building $MLFLOW_TAG"
    docker build --quiet --build-arg "MLFLOW_VERSION=$MLFLOW_VERSION" -t "$MLFLOW_TAG" -f mlflow.Dockerfile . >/dev/null
fi

if have "$POSTGRES_TAG"; then
    say "$POSTGRES_TAG exists"
else
    say "building $POSTGRES_TAG"
    docker build --quiet -t "$POSTGRES_TAG" -f postgres.Dockerfile . >/dev/null
fi
docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' \
    | grep -E "^(python:3\.11|${MLFLOW_TAG}|${POSTGRES_TAG})" | sed 's/^/docker-base: /'
