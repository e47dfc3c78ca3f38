"""The registry of adapter kinds. Each kind's module is imported only when it is used, so a
worker that never calls Gemini never loads google-genai."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from app.inference.adapters.base import Adapter

# kind -> "module:class"
REGISTRY: dict[str, str] = {
    "openai_chat_audio": "app.inference.adapters.openai_chat_audio:OpenAIChatAudio",
    "gemini": "app.inference.adapters.gemini:Gemini",
    "http": "app.inference.adapters.http:HttpEndpoint",
    "command": "app.inference.adapters.command:Command",
}


def adapter_class(kind: str) -> type[Adapter]:
    try:
        module_name, _, class_name = REGISTRY[kind].partition(":")
    except KeyError:
        raise ValueError(f"no inference adapter of kind {kind!r}") from None
    return getattr(importlib.import_module(module_name), class_name)


def build(config, *, environ: Mapping[str, str] | None = None) -> Adapter:
    """The adapter for a validated config."""
    return adapter_class(config.kind)(config, environ=environ)
