"""google-genai clients and their errors, shared by the `gemini` inference adapter and the
automatic judges.

One client per (key, endpoint, timeout) and process, with the SDK's own retries off: the Celery
task owns retrying, so a call is exactly one HTTP request and a 429's retryDelay reaches our
backoff instead of being slept through inside the SDK.
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from google import genai
from google.genai import errors, types

from app.inference.adapters.base import (
    AdapterError,
    PermanentError,
    TransientError,
    error_for_status,
)

# Pinned rather than left to the SDK: the audio-out fields (responseModalities, speechConfig)
# are documented on v1beta, and google-genai has changed its default version between releases.
API_VERSION = "v1beta"


@functools.lru_cache(maxsize=32)
def client_for(api_key: str, base_url: str | None, timeout_s: float) -> genai.Client:
    """A Gemini Developer API client that makes one HTTP request per call and gives up after
    `timeout_s` seconds. `base_url` None means Google's endpoint."""
    options = types.HttpOptions(
        base_url=base_url,
        api_version=API_VERSION,
        timeout=max(1, math.ceil(timeout_s * 1000)),  # the SDK counts milliseconds
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    # vertexai=False: a stray GOOGLE_GENAI_USE_VERTEXAI on a worker must not reroute the call.
    return genai.Client(vertexai=False, api_key=api_key, http_options=options)


# A connection pool must not cross a fork (Celery's prefork workers): each child builds its own.
os.register_at_fork(after_in_child=client_for.cache_clear)


def _http_modules() -> tuple[ModuleType, ...]:
    """httpx and httpx2 (the SDK uses whichever is installed, preferring httpx2); their
    exception classes are unrelated, so both are checked."""
    found = []
    for name in ("httpx", "httpx2"):
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            pass
    return tuple(found)


_HTTP = _http_modules()
_TIMEOUTS = tuple(module.TimeoutException for module in _HTTP)
_TRANSPORT = tuple(module.TransportError for module in _HTTP)  # connect, read, protocol errors
_UNREADABLE = tuple(module.RequestError for module in _HTTP)  # decoding, too many redirects


def classify(exc: BaseException, *, timeout_s: float | None = None) -> AdapterError | None:
    """Our error for what google-genai or its HTTP client raised; None for anything else (a bug
    should surface as itself). 408, 429 and 5xx are transient, with the wait Google asked for."""
    if isinstance(exc, errors.APIError):
        code = exc.code or 0
        detail = ": ".join(str(part) for part in (exc.status, exc.message) if part) or str(exc)
        headers = getattr(exc.response, "headers", None) or {}
        return error_for_status(code, detail, headers, exc.details)
    if isinstance(exc, _TIMEOUTS):
        within = f" within {timeout_s:g} s" if timeout_s is not None else ""
        return TransientError(f"the Gemini API did not answer{within} ({type(exc).__name__})")
    if isinstance(exc, _TRANSPORT):
        return TransientError(f"could not reach the Gemini API: {_describe(exc)}")
    if isinstance(exc, (*_UNREADABLE, errors.UnknownApiResponseError, json.JSONDecodeError)):
        # a 200 that is not JSON: base_url points at something that is not the Gemini API
        return PermanentError(f"the Gemini API sent an unreadable reply: {_describe(exc)}")
    return None


@contextmanager
def gemini_errors(*, timeout_s: float | None = None) -> Iterator[None]:
    """Raise TransientError / PermanentError in place of google-genai's and httpx's errors."""
    try:
        yield
    except Exception as exc:
        error = classify(exc, timeout_s=timeout_s)
        if error is None:
            raise
        raise error from exc


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
