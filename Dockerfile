# syntax=docker/dockerfile:1
# pixelpipe: the image proxy server.
#
#   docker build -t pixelpipe .
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp \
#       -e PIXELPIPE_KEY=... -e PIXELPIPE_SALT=... pixelpipe
#
# The first two stages install pixelpipe's dependencies, then pixelpipe, into a
# virtual environment with docker/install-runtime.sh (the same script the test
# suite runs, so this install is tested without a Docker engine); the final
# image gets only that environment: no pip cache, no build tools, no compiler.
# Everything that does not change with the code comes first, so a rebuild after
# a code change reuses every layer but the last copy.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS deps
COPY pyproject.toml docker/install-runtime.sh /src/
RUN sh /src/install-runtime.sh /src /opt/pixelpipe deps

# pixelpipe itself, on top of the dependencies. The build context is exactly
# what it needs (.dockerignore). /app keeps only the files this step wrote, so
# a code change costs the final stage a copy of a few hundred kilobytes.
FROM deps AS build
COPY . /src/
RUN touch /tmp/before \
    && sh /src/docker/install-runtime.sh /src /opt/pixelpipe app \
    && find /opt/pixelpipe -newer /tmp/before ! -type d -print0 > /tmp/written \
    && tar --null --files-from=/tmp/written -cf /tmp/written.tar \
    && mkdir /app && tar -C /app -xf /tmp/written.tar

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

# Last, so the layers above stay cached (COPY writes root-owned files whatever
# USER says: the server cannot change its own code).
COPY --from=deps /opt/pixelpipe /opt/pixelpipe
COPY --from=build /app/opt/pixelpipe /opt/pixelpipe
