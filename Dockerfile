# syntax=docker/dockerfile:1
# The salespulse worker image: `salespulse worker` by default; the same image runs
# `salespulse topics create` and `salespulse migrate` (the compose file's init service).
#
#   docker build -t salespulse .
#   docker run --rm -e SALESPULSE_BROKER=kafka:9092 \
#       -e SALESPULSE_CLICKHOUSE_URL=http://salespulse:secret@clickhouse:8123 salespulse

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the project's wheel, then a virtual environment holding it and its dependencies ---
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# A compiler only for dependencies without a wheel for this platform; it stays in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only what the wheel is built from (see .dockerignore): editing tests does not rebuild it.
COPY pyproject.toml README.md ./
COPY salespulse ./salespulse
RUN pip wheel --no-deps --wheel-dir /dist .

RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --upgrade pip \
    && /opt/venv/bin/pip install /dist/salespulse-*.whl \
    && /opt/venv/bin/salespulse --help > /dev/null

# --- runtime: the virtual environment and a non-root user, nothing else --------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="salespulse" \
      org.opencontainers.image.description="Kafka → Faust → ClickHouse sales activity pipeline" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 salespulse \
    && useradd --system --uid 10001 --gid salespulse --home-dir /var/lib/salespulse \
       --shell /usr/sbin/nologin salespulse \
    && mkdir -p /var/lib/salespulse \
    && chown salespulse:salespulse /var/lib/salespulse

COPY --from=build /opt/venv /opt/venv

# Production defaults; every one can be overridden with the same variable at run time.
# The web server listens on every interface so Prometheus (another container) can scrape it.
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SALESPULSE_DATA_DIR=/var/lib/salespulse \
    SALESPULSE_TABLE_STORE=rocksdb \
    SALESPULSE_WEB_HOST=0.0.0.0 \
    SALESPULSE_WEB_PORT=6066 \
    SALESPULSE_LOG_FORMAT=json

USER salespulse:salespulse
WORKDIR /var/lib/salespulse
VOLUME ["/var/lib/salespulse"]

# /metrics, /health and /ready; 8080 is the manager page when the image runs `salespulse ui`.
EXPOSE 6066 8080

# No curl in a slim image: Python's urllib fails (exit 1) on a refused connection or a non-2xx.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SALESPULSE_WEB_PORT', '6066') + '/health', timeout=4)"]

ENTRYPOINT ["salespulse"]
CMD ["worker"]
