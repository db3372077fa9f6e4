"""OpenAI embeddings ⇄ Gemini embeddings.

AI Studio: one string → ``:embedContent``, several → ``:batchEmbedContents``. Vertex AI serves
embedding models through ``:predict`` (instances/predictions), which also reports token counts.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import InvalidRequestError
from gateway.providers import canonical as c
from gateway.providers.base import CanonicalResponse
from gateway.types import Usage

SUPPORTED = frozenset({"input", "dimensions", "encoding_format"})


def _texts(body: dict[str, Any], provider_type: str) -> list[str] | str:
    c.check_supported(body, SUPPORTED, provider_type)
    if body.get("encoding_format") not in (None, "float"):
        raise c.unsupported("encoding_format", provider_type, "only 'float'")
    value = body.get("input")
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return value
    if isinstance(value, list) and value:
        raise c.unsupported("input", provider_type, "token arrays; send strings")
    raise InvalidRequestError("'input' must be a string or a non-empty array of strings.", param="input")


def to_native(body: dict[str, Any], model: str, *, vertex: bool) -> tuple[str, bytes]:
    """(method suffix of the model URL, body bytes)."""
    texts = _texts(body, "vertex" if vertex else "gemini")
    dimensions = body.get("dimensions")
    if vertex:
        batch = [texts] if isinstance(texts, str) else texts
        native: dict[str, Any] = {"instances": [{"content": text} for text in batch]}
        if dimensions is not None:
            native["parameters"] = {"outputDimensionality": dimensions}
        return "predict", orjson.dumps(native)
    if isinstance(texts, str):
        single: dict[str, Any] = {"content": {"parts": [{"text": texts}]}}
        if dimensions is not None:
            single["outputDimensionality"] = dimensions
        return "embedContent", orjson.dumps(single)
    requests = []
    for text in texts:
        request: dict[str, Any] = {"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            request["outputDimensionality"] = dimensions
        requests.append(request)
    return "batchEmbedContents", orjson.dumps({"requests": requests})


def from_native(native: dict[str, Any], public_model: str) -> CanonicalResponse:
    prompt_tokens = 0
    if "embedding" in native:
        vectors = [native["embedding"].get("values") or []]
    elif "embeddings" in native:
        vectors = [item.get("values") or [] for item in native["embeddings"]]
    else:
        vectors = []
        for prediction in native.get("predictions") or []:
            embedding = prediction.get("embeddings") or {}
            vectors.append(embedding.get("values") or [])
            prompt_tokens += int((embedding.get("statistics") or {}).get("token_count") or 0)
    # AI Studio reports no token counts: usage is None so the pipeline estimates it.
    usage = Usage(prompt_tokens=prompt_tokens) if "predictions" in native else None
    body = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": vector} for i, vector in enumerate(vectors)
        ],
        "model": public_model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
    return CanonicalResponse(body=body, usage=usage)
