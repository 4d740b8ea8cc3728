# syntax=docker/dockerfile:1
# studytrack API image: gunicorn + Uvicorn workers, started by boot/docker-run.sh
# (wait for the database, migrate once, exec gunicorn). Used by docker-compose.yml and Railway.
#
#   docker build -t studytrack .
#   docker run --rm -p 8000:8000 -e DATABASE_URL=postgresql://user:pass@host:5432/db studytrack

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: a virtualenv with the pinned runtime dependencies and the project ----------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app

# Dependencies first, in their own layer: editing the code does not reinstall them.
# Wheels only: every pinned dependency ships manylinux wheels (x86_64 and aarch64), so no compiler
# is needed here either; a new dependency without a wheel fails this step loudly.
COPY requirements.txt ./
RUN pip install --only-binary=:all: -r requirements.txt

# The project itself, installed in place (an editable install of /app/src): the code the server
# runs is /app/src, which `docker compose watch` syncs during development.
COPY pyproject.toml ./
COPY src ./src
RUN pip install --no-deps --editable . \
    && studytrack --version

# ---- runtime: the virtualenv and the code, no build tools, a non-root user ---------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PORT=8000

RUN groupadd --system --gid 10001 studytrack \
    && useradd --system --uid 10001 --gid studytrack --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin studytrack

WORKDIR /app

COPY --from=builder /opt/venv /opt/venv
# Owned by the app user only so that `docker compose watch` (which copies as the container user)
# can sync edits into it; nothing else in the image is writable by that user.
COPY --chown=studytrack:studytrack src /app/src
COPY boot/docker-run.sh /app/boot/docker-run.sh

USER 10001:10001

EXPOSE 8000

# /healthz is 200 only when the database answers; PORT is read at check time (Railway sets it).
# No curl in the slim image: Python's urllib raises on a non-2xx answer, which fails the check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]

# bash runs the script (no reliance on the file's mode bit); the script execs gunicorn, which then
# runs as PID 1 and handles SIGTERM with a graceful shutdown.
ENTRYPOINT ["/bin/bash", "/app/boot/docker-run.sh"]
