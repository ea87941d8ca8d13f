# syntax=docker/dockerfile:1
# pixelpipe: the image proxy server.
#
#   docker build -t pixelpipe .
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp \
#       -e PIXELPIPE_KEY=... -e PIXELPIPE_SALT=... pixelpipe
#
# Two stages: the first installs pixelpipe into a virtual environment with
# docker/install-runtime.sh (the same script the test suite runs, so this
# install is tested without a Docker engine); the final image gets only that
# environment: no pip cache, no build tools, no compiler.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proxy ./proxy
COPY signing ./signing
COPY docker/install-runtime.sh ./docker/
RUN sh docker/install-runtime.sh /src /opt/pixelpipe

FROM ${PYTHON_IMAGE}
# A fixed, unprivileged uid/gid, so Kubernetes' runAsNonRoot can check it.
# jemalloc: `pixelpipe serve` runs on it when installed (freed memory goes back
# once a worker rests; see "Under load" in the README and BENCHMARKS.md).
# DejaVu: the font text watermarks (watermark_text) are drawn with.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libjemalloc2 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 pixelpipe \
    && useradd --system --uid 10001 --gid pixelpipe --no-create-home --shell /usr/sbin/nologin pixelpipe
COPY --from=build /opt/pixelpipe /opt/pixelpipe

# Read-only root file system friendly: no .pyc writes, and the only writable
# place pixelpipe needs is /tmp (libvips' temporary files and the metrics
# files of the worker processes), a tmpfs or emptyDir in production.
ENV PATH=/opt/pixelpipe/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    PROMETHEUS_MULTIPROC_DIR=/tmp/pixelpipe-metrics \
    PIXELPIPE_HOST=0.0.0.0 \
    PIXELPIPE_PORT=8080 \
    PIXELPIPE_LOG_FORMAT=json \
    PIXELPIPE_SHUTDOWN_DELAY=5 \
    PIXELPIPE_SHUTDOWN_TIMEOUT=20

USER 10001:10001
EXPOSE 8080
# No curl in the slim image: Python asks /health, and a non-2xx answer fails the check.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PIXELPIPE_PORT', '8080') + '/health', timeout=2)"]

# Exec form: pixelpipe is PID 1 and gets SIGTERM itself. uvicorn installs
# handlers for it (PID 1 ignores only signals without a handler): /ready fails
# for PIXELPIPE_SHUTDOWN_DELAY seconds, then in-flight requests finish within
# PIXELPIPE_SHUTDOWN_TIMEOUT. The supervising process reaps its own workers.
STOPSIGNAL SIGTERM
ENTRYPOINT ["pixelpipe", "serve"]
