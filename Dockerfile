# One image for the API and the worker: `marketplace serve` (default) or `marketplace worker`.
# In production point it at real servers with MARKETPLACE_DATABASE_URL / MARKETPLACE_REDIS_URL
# (see docker-compose.yml); without them it falls back to the embedded servers under DATA_DIR.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY models ./models
COPY matcher ./matcher
COPY live ./live
COPY workers ./workers
COPY api ./api
COPY marketplace ./marketplace
RUN pip install . && rm -rf /app/build

# Never run as root: a fixed uid so volume permissions are predictable.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin marketplace \
    && mkdir -p /data && chown marketplace:marketplace /data
USER marketplace
WORKDIR /home/marketplace

# NUMBA_CACHE_DIR: the matcher's compiled loops (matcher/postings.py, tokenize.py) are compiled
# by the first process that needs them and loaded from here by every later start.
ENV MARKETPLACE_HOST=0.0.0.0 \
    MARKETPLACE_PORT=8080 \
    MARKETPLACE_DATA_DIR=/data \
    NUMBA_CACHE_DIR=/data/numba-cache
EXPOSE 8080
VOLUME ["/data"]

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('MARKETPLACE_PORT', '8080'), timeout=4)"

# SIGTERM (docker stop) shuts the API / worker down cleanly; see marketplace/runner.py.
STOPSIGNAL SIGTERM
CMD ["marketplace", "serve"]
