# syntax=docker/dockerfile:1
# One image per function, carrying that function's code and dependency group and nothing else:
#   docker build --target function --build-arg FUNCTION=llm --build-arg EXTRAS=llm -t jan-llm .
# The build arguments come from functions/<name>/function.toml (skaffold.yaml's generated artifacts pass them).
# Stages: function (production), function-dev (skaffold dev: writable code, auto-reload), migrate (the migration
# Job). skaffold.yaml lists every image; `make images` builds the same list.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV VIRTUAL_ENV=/opt/venv \
    APP_HOME=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
ENV PATH="$VIRTUAL_ENV/bin:$PATH" \
    PYTHONPATH="$APP_HOME"
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app

FROM base AS dependencies
ARG FUNCTION
ARG EXTRAS=${FUNCTION}
WORKDIR /build
COPY pyproject.toml ./
# Only pyproject.toml is copied, so this layer is rebuilt only when the dependencies change. The project itself is
# uninstalled again: its code runs from $APP_HOME. Hash-checked bytecode is never revalidated against sources,
# which suits an image nobody edits (function-dev compiles nothing).
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m venv "$VIRTUAL_ENV" \
 && pip install ".[${EXTRAS}]" \
 && pip uninstall --yes jan-serverless \
 && python -m compileall -q --invalidation-mode unchecked-hash "$VIRTUAL_ENV"

FROM base AS app
ARG FUNCTION
ENV FUNCTION=${FUNCTION}
COPY --from=dependencies $VIRTUAL_ENV $VIRTUAL_ENV
WORKDIR $APP_HOME
COPY shared/ shared/
COPY functions/__init__.py functions/
COPY functions/${FUNCTION}/ functions/${FUNCTION}/
USER 10001:10001
EXPOSE 8080
# The server the function's manifest declares (gunicorn or uvicorn), run inside this process: it is PID 1, gets
# SIGTERM itself and drains in-flight requests.
CMD ["python", "-m", "shared.serve"]

FROM app AS function-dev
USER root
RUN chown -R app:app "$APP_HOME"
USER 10001:10001
# Auto-reload on synced files: gunicorn reads GUNICORN_CMD_ARGS, uvicorn UVICORN_RELOAD.
ENV GUNICORN_CMD_ARGS="--reload" \
    UVICORN_RELOAD="true"

FROM app AS migrate
COPY migrations/ migrations/
# Schema first, then the providers of $PROVIDERS_FILE (knative/components/migration/job.yaml mounts it).
CMD ["/bin/sh", "-c", \
     "alembic -c migrations/alembic.ini upgrade head && exec python -m functions.llm.manage load-providers \"$PROVIDERS_FILE\""]

FROM app AS function
USER root
RUN python -m compileall -q --invalidation-mode unchecked-hash "$APP_HOME"
USER 10001:10001
