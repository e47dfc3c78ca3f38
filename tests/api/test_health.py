from app.config import get_settings
from app.redis_client import reset_redis
from tests.conftest import free_port


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "postgres": "ok", "redis": "ok"}


def test_readyz_says_503_when_redis_does_not_answer(client, monkeypatch):
    monkeypatch.setenv("ARENA_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    reset_redis()
    try:
        reply = client.get("/readyz")
        assert reply.status_code == 503
        assert reply.json()["redis"].startswith("unavailable") and reply.json()["postgres"] == "ok"
        assert client.get("/healthz").status_code == 200
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        reset_redis()


def test_readyz_says_503_when_postgres_does_not_answer(client, monkeypatch):
    from app.db.session import dispose_engine

    monkeypatch.setenv("ARENA_DATABASE_URL",
                       f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    get_settings.cache_clear()
    dispose_engine()
    try:
        reply = client.get("/readyz")
        assert reply.status_code == 503 and reply.json()["postgres"].startswith("unavailable")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        dispose_engine()


def test_openapi_describes_the_api(client):
    spec = client.get("/openapi.json").json()
    for path in ("/api/v1/models", "/api/v1/datasets", "/api/v1/models/{model_id}/responses",
                 "/api/v1/leaderboard", "/healthz", "/readyz"):
        assert path in spec["paths"], path
    assert client.get("/docs").status_code == 200
