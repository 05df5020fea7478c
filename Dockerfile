# redis-persist replica image: API + worker in one process, Redis from REDIS_URL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY pyproject.toml README.md ./
COPY redis_persist ./redis_persist
RUN pip install .

RUN useradd --create-home --uid 10001 app \
    && mkdir -p /data && chown app /data
USER app

# Only used when REDIS_URL is unset (embedded Redis).
ENV REDIS_PERSIST_DATA_DIR=/data

EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=3)"]

CMD ["redis-persist", "serve", "--host", "0.0.0.0", "--port", "8000"]
