# syntax=docker/dockerfile:1
#
# changebot container image.
#
#   docker build -t changebot:0.1.0 .
#   docker run --rm -p 3000:3000 --env-file .env \
#     -v "$PWD/policy.yml:/etc/changebot/policy.yml:ro" changebot:0.1.0
#
# Stage 1 builds wheels (the project and every dependency); stage 2 installs them into
# a virtualenv on a clean base, so no compiler, header or source tree reaches the final
# image. See deploy/README.md for Kubernetes.

ARG PYTHON_IMAGE=python:3.11-slim

# ─────────────────────────────── build ───────────────────────────────
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# Compilers only for a dependency without a wheel for this platform; this stage is thrown away
# (so its apt packages are not pinned).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only what the wheel is made of (README.md is the package's long description).
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY domain ./domain
COPY handlers ./handlers
COPY modals ./modals
COPY scheduler ./scheduler
COPY storage ./storage
COPY tooling ./tooling
COPY adapters ./adapters

# changebot-*.whl plus a wheel for every dependency, so the final stage installs offline.
RUN python -m pip wheel --wheel-dir /wheels . \
 && ls /wheels/changebot-*.whl

# ─────────────────────────────── runtime ─────────────────────────────
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="changebot" \
      org.opencontainers.image.description="Slack-first change management bot" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    CHANGEBOT_POLICY=/etc/changebot/policy.yml \
    MPLCONFIGDIR=/tmp/matplotlib

RUN groupadd --system --gid 10001 changebot \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /var/lib/changebot --shell /usr/sbin/nologin changebot \
 && mkdir -p /etc/changebot /var/lib/changebot \
 && chown 10001:10001 /var/lib/changebot

# The wheels are bind-mounted from the build stage, so they never become a layer here.
# The venv has no pip of its own: the base image's pip installs into it.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv --without-pip /opt/venv \
 && python -m pip --python /opt/venv/bin/python install --no-index --find-links=/wheels changebot \
 && changebot --help >/dev/null

# The working directory is only used by the SQLite default (./changebot.db) of a single
# container run; with PostgreSQL (DATABASE_URL) the root filesystem can be read-only.
WORKDIR /var/lib/changebot
USER 10001:10001

EXPOSE 3000

# No curl in slim images: python's urllib. Any non-200 (503 while the database or the
# scheduler is down) raises, so the check fails. Only `serve` listens; for `socket` run
# with --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["changebot"]
CMD ["serve", "--host", "0.0.0.0", "--port", "3000"]
