"""The benchmark's model: an OpenAI-compatible server that answers at once with the same
chat completion (a 0.5 s spoken answer) every time. It reads each request to the end but does
not parse it, so that on a shared machine the CPU goes to the arena, which is what the
benchmark measures; the tests' fake (tests/fakes/openai_server.py) checks requests instead."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from tests.fakes.openai_server import _Reply
from tests.fakes.server import serve


class InstantModel:
    """A raw ASGI app: POST /v1/chat/completions gets the canned reply; `requests` counts."""

    def __init__(self) -> None:
        self.requests = 0
        self.body = json.dumps(_Reply("bench-omni").completion("ok")).encode()
        self.headers = [(b"content-type", b"application/json"),
                        (b"content-length", str(len(self.body)).encode())]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:  # read the whole request, as a real server must
            message = await receive()
            more = message.get("more_body", False)
        if scope["path"].endswith("/chat/completions"):
            self.requests += 1
            await send({"type": "http.response.start", "status": 200, "headers": self.headers})
            await send({"type": "http.response.body", "body": self.body})
        else:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})


@contextmanager
def running(model: InstantModel) -> Iterator[str]:
    """Serve the model; yields the base URL an OpenAI client takes (".../v1")."""
    with serve(model) as url:
        yield f"{url}/v1"
