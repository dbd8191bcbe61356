# SEE, the Strategy Execution Engine: one process serving gRPC (GRPC_PORT, 50051) and HTTP/JSON (PORT, 8003).
#
#   docker build -t see:0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker run --rm -p 50051:50051 -p 8003:8003 -v see-data:/var/lib/see -e API_KEY=... see:0.1.0
#
# Checked with `hadolint Dockerfile` (make docker-lint). The build context is an allowlist: see .dockerignore.

# One base for both stages: the virtualenv copied out of the builder links to this image's /usr/local/bin/python3.11.
# For reproducible builds also pin the digest: --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---------------------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1

# A C toolchain only for a dependency without a wheel for the target platform; it never reaches the runtime image.
# build-essential is a metapackage whose version is fixed for the whole Debian 12 (bookworm) release.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential=12.9 \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /src
# Everything `pip install .` reads (pyproject.toml: setuptools, packages see_grpc/ and generated/see/).
COPY pyproject.toml README.md ./
COPY protos/ protos/
COPY third_party/ third_party/
COPY openapi/ openapi/
COPY generated/ generated/
COPY see_grpc/ see_grpc/
# pip byte-compiles the installed modules here, so nothing needs to write .pyc files at run time (read-only root).
RUN pip install --no-cache-dir . \
    && pip check

# ---------------------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="see" \
      org.opencontainers.image.description="SEE, the Strategy Execution Engine: backtest, optimize and run forex strategies behind gRPC and HTTP/JSON" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# DATA_DIR holds SQLite, the generated API key file (mode 0600) and sample bars. NUMBA_CACHE_DIR keeps numba's
# on-disk cache off the (read-only) site-packages. HOST/PORT/GRPC_PORT are the service's defaults, spelled out.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/venv/bin:${PATH}" \
    DATA_DIR=/var/lib/see \
    HOST=0.0.0.0 \
    PORT=8003 \
    GRPC_PORT=50051 \
    NUMBA_CACHE_DIR=/tmp/numba-cache

# Uploaded strategy code runs in sandbox workers that confine themselves (docs/security.md). Run the container as
# this non-root user with Docker's or Kubernetes' RuntimeDefault seccomp profile, no-new-privileges, a read-only root
# filesystem (plus a writable /tmp) and every capability dropped: workers then apply Landlock and their own seccomp
# allowlist; namespaces need a profile that allows unshare(CLONE_NEWUSER). GET /health/detailed lists what is active.
#   docker run --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges ... see:0.1.0
# A fixed, numeric non-root identity (10001) so Kubernetes' runAsNonRoot can verify it and fsGroup can match it.
RUN groupadd --system --gid 10001 see \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/see --no-create-home \
       --shell /usr/sbin/nologin see \
    && install --directory --owner=10001 --group=10001 --mode=0750 /var/lib/see

COPY --from=builder /opt/venv /opt/venv

# The service reads an optional .env from its working directory; /app stays root-owned and empty.
WORKDIR /app

# Declared after the directory is created and owned, so a fresh named volume inherits owner and mode.
VOLUME ["/var/lib/see"]

USER 10001:10001

EXPOSE 50051 8003

# The server drains on SIGTERM (SHUTDOWN_GRACE_SECONDS); python runs as PID 1, so it must handle the signal itself.
STOPSIGNAL SIGTERM

# No curl in slim images: python's urllib against the open GET /health on PORT (exit 1 on any error or non-200).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:' + os.environ.get('PORT', '8003') + '/health'; sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]

ENTRYPOINT ["python", "-m", "see_grpc"]
