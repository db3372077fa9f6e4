"""Provider translators: one module per provider, chosen by the provider's ``type``."""

from __future__ import annotations

import importlib

from gateway.providers.base import Translator

#: provider type -> (module, class). Imported on first use so optional extras stay optional.
_TRANSLATORS: dict[str, tuple[str, str]] = {
    "openai": ("gateway.providers.openai", "OpenAITranslator"),
    "azure": ("gateway.providers.openai", "OpenAITranslator"),
    "mistral": ("gateway.providers.openai", "OpenAITranslator"),
    "openai_compatible": ("gateway.providers.openai", "OpenAITranslator"),
    "anthropic": ("gateway.providers.anthropic", "AnthropicTranslator"),
    "gemini": ("gateway.providers.gemini", "GeminiTranslator"),
    "vertex": ("gateway.providers.gemini", "VertexTranslator"),
    "bedrock": ("gateway.providers.bedrock", "BedrockTranslator"),
}


def translator_for(provider_type: str) -> Translator:
    module_name, class_name = _TRANSLATORS[provider_type]
    translator: Translator = getattr(importlib.import_module(module_name), class_name)()
    return translator


__all__ = ["Translator", "translator_for"]
