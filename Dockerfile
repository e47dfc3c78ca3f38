# S2S Arena production image. Run it with docker-compose.yml (Postgres, Redis, migrations,
# web and worker); the default command serves the web app on port 8000.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ARENA_ENVIRONMENT=production \
    ARENA_DATA_DIR=/data

# No system libraries are needed: the soundfile and soxr wheels bundle theirs.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin arena \
    && mkdir -p /data \
    && chown arena:arena /data

WORKDIR /srv/s2s-arena
COPY . .
# Editable on purpose: the app finds templates/, static/, migrations/ and alembic.ini
# beside its package directory (app/config.py PROJECT_ROOT), and those are not part of
# the wheel, so a plain `pip install .` would leave them behind in this directory.
RUN pip install -e .

USER arena
VOLUME ["/data"]
EXPOSE 8000
CMD ["s2s-arena", "serve", "--host", "0.0.0.0", "--port", "8000"]
