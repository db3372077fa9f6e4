"""Prompt token estimates for the policy input (``input.tokens``) and for pre-flight limits.

The estimate uses the model's tiktoken encoding: ``o200k_base`` for the gpt-4o, gpt-4.1,
o1/o3/o4 and gpt-5 families (and chatgpt-4o), ``cl100k_base`` for everything else, unless a
model names its encoding explicitly (``models.<name>.encoding`` in the config).

Encodings are loaded lazily, only those in use (o200k_base costs about 74 MB). With a data
directory, ``<encoding>.tiktoken`` files are read from it (air-gapped deployments, CI) through
tiktoken's own loader and the parameters of ``tiktoken_ext.openai_public`` (pattern, special
tokens and the published SHA-256, so a corrupt file is refused). When an encoding cannot be
loaded, the estimate falls back to ``ceil(chars / 4)`` (OpenAI's rule of thumb for English
text) and says so once in the log.

Chat framing follows OpenAI's published counting recipe: 3 tokens per message, 1 more when a
message has a ``name``, 3 for the priming of the reply; tool definitions and tool calls are
counted from their compact JSON, and each image part adds a fixed allowance.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
import tiktoken
import tiktoken.load
import tiktoken.model
import tiktoken_ext.openai_public as openai_public

log = logging.getLogger(__name__)

O200K = "o200k_base"
CL100K = "cl100k_base"

#: Model-name prefixes (after any ``provider/`` prefix) that use o200k_base.
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "o1", "o3", "o4", "gpt-5", "chatgpt-4o", "ft:gpt-4o")

#: Encodings whose ordinary-text tokens are those of another one: estimate with the base so
#: the same 74 MB table is not loaded twice (harmony only adds special tokens).
_SAME_TEXT_TOKENS = {"o200k_harmony": O200K}

#: Model names whose encoding is remembered (they are configured names, so a few in practice).
_MAX_CACHED_NAMES = 4096

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
#: A low-detail image costs 85 tokens; higher detail depends on the size, unknown here.
IMAGE_PART_TOKENS = 85
CHARS_PER_TOKEN = 4

# The swap of tiktoken_ext's loader below is process-wide for its duration; one at a time.
_LOAD_LOCK = threading.Lock()


def approximate_tokens(text: str) -> int:
    """The documented fallback: one token per four characters, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def encoding_name_for_model(model: str, overrides: Mapping[str, str] | None = None) -> str:
    """Which encoding estimates ``model`` (an explicit override wins)."""
    if overrides and model in overrides:
        return overrides[model]
    name = model.rsplit("/", 1)[-1]
    try:
        encoding = tiktoken.model.encoding_name_for_model(name)
    except KeyError:
        encoding = O200K if name.startswith(_O200K_PREFIXES) else CL100K
    return _SAME_TEXT_TOKENS.get(encoding, encoding)


def _read_sha256sums(data_dir: Path) -> dict[str, str]:
    sums: dict[str, str] = {}
    path = data_dir / "SHA256SUMS"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 2:
                sums[parts[1].lstrip("*")] = parts[0]
    return sums


def load_encoding_from_dir(name: str, data_dir: Path) -> tiktoken.Encoding:
    """Build encoding ``name`` from ``<data_dir>/<name>.tiktoken``.

    Runs tiktoken_ext's own constructor for ``name`` with its loader pointed at the local file,
    so the pattern, the special tokens and the expected hash are tiktoken's, not copies. A hash
    listed in ``SHA256SUMS`` beside the file is checked too (it covers encodings without one).
    Raises ``FileNotFoundError`` or ``ValueError`` when the file is missing or corrupt.
    """
    constructor: Callable[[], dict[str, Any]] | None = openai_public.ENCODING_CONSTRUCTORS.get(name)
    if constructor is None:
        raise ValueError(f"unknown tiktoken encoding {name!r}")
    sums = _read_sha256sums(data_dir)

    def local_loader(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        filename = url.rsplit("/", 1)[-1]
        path = data_dir / filename
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found")
        listed = sums.get(filename)
        if listed is not None and expected_hash is not None and listed != expected_hash:
            raise ValueError(f"{path}: SHA256SUMS disagrees with tiktoken's published hash")
        return tiktoken.load.load_tiktoken_bpe(str(path), expected_hash=expected_hash or listed)

    with _LOAD_LOCK:
        original = openai_public.load_tiktoken_bpe
        openai_public.load_tiktoken_bpe = local_loader
        try:
            params = constructor()
        finally:
            openai_public.load_tiktoken_bpe = original
    return tiktoken.Encoding(**params)


class TokenEstimator:
    """Counts prompt tokens per model; one per process, created in the app lifespan."""

    def __init__(self, data_dir: str | None = None, encodings: Mapping[str, str] | None = None) -> None:
        self._data_dir = Path(data_dir) if data_dir else None
        self._overrides = dict(encodings or {})
        self._names: dict[str, str] = {}
        self._encodings: dict[str, tiktoken.Encoding | None] = {}
        self._lock = threading.Lock()

    def encoding_name(self, model: str) -> str:
        # Asked on every request; tiktoken's own lookup walks its prefix table each time.
        name = self._names.get(model)
        if name is None:
            name = encoding_name_for_model(model, self._overrides)
            if len(self._names) < _MAX_CACHED_NAMES:
                self._names[model] = name
        return name

    def encoding(self, name: str) -> tiktoken.Encoding | None:
        """The loaded encoding, or None when it is unavailable (then estimates approximate)."""
        try:
            return self._encodings[name]
        except KeyError:
            pass
        with self._lock:
            if name not in self._encodings:
                self._encodings[name] = self._load(name)
            return self._encodings[name]

    def loaded_encodings(self) -> list[str]:
        """Names of the encodings loaded so far (memory: only those in use)."""
        return sorted(name for name, encoding in self._encodings.items() if encoding is not None)

    def preload(self, models: Iterable[str]) -> None:
        """Load the encodings of these models now (at start-up, not on the first request)."""
        for model in models:
            self.encoding(self.encoding_name(model))

    def _load(self, name: str) -> tiktoken.Encoding | None:
        try:
            if self._data_dir is not None:
                encoding = load_encoding_from_dir(name, self._data_dir)
            else:
                # tiktoken's own registry keeps this instance too: leave it untouched.
                return tiktoken.get_encoding(name)
        except Exception as exc:
            where = f"from {self._data_dir}" if self._data_dir else "through tiktoken's cache/download"
            log.warning(
                "tiktoken encoding %s cannot be loaded %s (%s); token estimates for its models "
                "use ceil(chars/%d) instead",
                name,
                where,
                exc,
                CHARS_PER_TOKEN,
            )
            return None
        # The Rust core holds its own copy of the ranks; the Python dict (200k bytes objects)
        # is only used to pickle the encoding. Measured: dropping it saves ~40 MB of RSS for
        # cl100k + o200k. Counting and encoding are unaffected.
        encoding._mergeable_ranks = {}
        return encoding

    def count(self, text: str, model: str) -> int:
        """Tokens of one text for ``model`` (special-token strings count as ordinary text)."""
        if not text:
            return 0
        encoding = self.encoding(self.encoding_name(model))
        if encoding is None:
            return approximate_tokens(text)
        return len(encoding.encode_ordinary(text))

    def estimate_texts(self, texts: Iterable[str], model: str) -> int:
        """Tokens of embedding inputs (no framing)."""
        return sum(self.count(text, model) for text in texts)

    def estimate_embeddings_input(self, value: Any, model: str) -> int:
        """Tokens of an embeddings ``input``: a string, strings, token ids or lists of ids."""
        if isinstance(value, str):
            return self.count(value, model)
        if isinstance(value, list):
            if all(isinstance(item, int) for item in value):
                return len(value)
            total = 0
            for item in value:
                if isinstance(item, str):
                    total += self.count(item, model)
                elif isinstance(item, list):
                    total += len(item)
            return total
        return 0

    def estimate_chat(self, body: Mapping[str, Any], model: str) -> int:
        """Prompt tokens of a chat completions request, framing and tool definitions included."""
        total = REPLY_PRIMING
        messages = body.get("messages")
        if isinstance(messages, list):
            for message in messages:
                if isinstance(message, Mapping):
                    total += self._message_tokens(message, model)
        for key in ("tools", "functions"):
            defs = body.get(key)
            if defs:
                total += self.count(_compact_json(defs), model)
        return total

    def _message_tokens(self, message: Mapping[str, Any], model: str) -> int:
        total = TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                total += self._content_tokens(value, model)
            elif key in ("tool_calls", "function_call"):
                total += self.count(_compact_json(value), model)
            elif isinstance(value, str):
                total += self.count(value, model)
                if key == "name":
                    total += TOKENS_PER_NAME
        return total

    def _content_tokens(self, content: Any, model: str) -> int:
        if isinstance(content, str):
            return self.count(content, model)
        if not isinstance(content, list):
            return 0
        total = 0
        for part in content:
            if not isinstance(part, Mapping):
                continue
            kind = part.get("type")
            if kind == "text" and isinstance(part.get("text"), str):
                total += self.count(part["text"], model)
            elif kind in ("image_url", "input_image", "image"):
                total += IMAGE_PART_TOKENS
            elif kind is not None:
                total += self.count(_compact_json(part), model)
        return total


def max_output(body: Mapping[str, Any]) -> int | None:
    """The client's output ceiling: ``max_completion_tokens`` (newer) or ``max_tokens``."""
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _compact_json(value: Any) -> str:
    return orjson.dumps(value).decode()
