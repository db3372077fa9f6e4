"""The guard: one object, built in the app lifespan, that the pipeline asks at three points.

1. after parsing the request: ``features(prompt_texts(body))`` -> ``input.prompt.pii`` and
   ``input.prompt.injection`` of the policy input;
2. when enforcing the decision: ``redact_request(body, decision.transform.redact, reversible=…)``
   before translation; keep the returned ``Restorer`` on the request context;
3. on the answer: ``screen_response_text`` for JSON bodies, ``stream_screener`` for streams.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from typing import Any

from gateway.guards.anonymize import Redactor, Restorer
from gateway.guards.config import GuardsConfig
from gateway.guards.injection import InjectionDetector
from gateway.guards.response import ResponseScreen, StreamScreener, screen_text
from gateway.guards.scanner import PiiScanner
from gateway.guards.secret_ref import resolve_secret_ref
from gateway.policy.decision import ResponseRules

#: In ``redact_request`` entity types, this stands for every type the guard knows.
ALL_TYPES = "*"


def _map_texts(body: dict[str, Any], fn: Callable[[str], str]) -> dict[str, Any]:
    """A copy of ``body`` with ``fn`` applied to every prompt text (the input is not modified)."""
    out = dict(body)
    messages = body.get("messages")
    if isinstance(messages, list):
        new_messages: list[Any] = []
        for message in messages:
            if isinstance(message, dict):
                content = message.get("content")
                if isinstance(content, str):
                    message = {**message, "content": fn(content)}
                elif isinstance(content, list):
                    parts = [
                        {**part, "text": fn(part["text"])}
                        if isinstance(part, dict)
                        and part.get("type") == "text"
                        and isinstance(part.get("text"), str)
                        else part
                        for part in content
                    ]
                    message = {**message, "content": parts}
            new_messages.append(message)
        out["messages"] = new_messages
    for key in ("input", "prompt"):  # embeddings input, legacy completions prompt
        value = body.get(key)
        if isinstance(value, str):
            out[key] = fn(value)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            out[key] = [fn(v) for v in value]
    return out


def prompt_texts(body: dict[str, Any]) -> list[str]:
    """Every text of a canonical (OpenAI-shaped) chat, embeddings or completions request."""
    texts: list[str] = []

    def collect(text: str) -> str:
        texts.append(text)
        return text

    _map_texts(body, collect)
    return texts


class Guard:
    def __init__(
        self, config: GuardsConfig, *, resolve_secret: Callable[[str], str] = resolve_secret_ref
    ) -> None:
        self.config = config
        self.enabled = config.enabled
        self.scanner = PiiScanner(config)
        encrypt_key = resolve_secret(config.encrypt_key) if config.encrypt_key else None
        self._redactor = Redactor(config, encrypt_key)
        self._injection = InjectionDetector(config.injection)

    @property
    def entity_types(self) -> frozenset[str]:
        return self.scanner.entity_types

    def features(self, texts: list[str]) -> dict[str, Any]:
        """Prompt facts for the policy input: entity counts and injection signals, no values."""
        if not self.enabled:
            return {"pii": [], "injection": {"score": 0.0, "signals": []}}
        counts: Counter[str] = Counter()
        for text in texts:
            for finding in self.scanner.scan(text):
                counts[finding.entity_type] += 1
        score, signals = self._injection.detect(texts)
        return {
            "pii": [{"type": t, "count": counts[t]} for t in sorted(counts)],
            "injection": {"score": score, "signals": signals},
        }

    def redact_request(
        self, body: dict[str, Any], entity_types: Collection[str], *, reversible: bool | None = None
    ) -> tuple[dict[str, Any], Restorer | None]:
        """Anonymize the request's texts for ``entity_types`` (``"*"``: all).

        Reversible (default: ``guards.reversible``): values become numbered placeholders and the
        returned ``Restorer`` maps them back in the answer; otherwise the configured operator of
        each type applies and no restorer is returned.
        """
        if not self.enabled or not entity_types:
            return body, None
        if reversible is None:
            reversible = self.config.reversible
        wanted = None if ALL_TYPES in entity_types else frozenset(entity_types)
        if reversible:
            restorer = Restorer()
            body = _map_texts(
                body,
                lambda text: self._redactor.to_placeholders(text, self.scanner.scan(text, wanted), restorer),
            )
            return body, restorer if len(restorer) else None
        return _map_texts(
            body, lambda text: self._redactor.anonymize(text, self.scanner.scan(text, wanted))
        ), None

    def response_screen(self, rules: ResponseRules, *, status: int | None = None) -> ResponseScreen:
        if not self.enabled:
            rules = ResponseRules()
        return ResponseScreen(self.scanner, self._redactor, rules, status=status)

    def screen_response_text(
        self, text: str, rules: ResponseRules, restorer: Restorer | None, *, status: int | None = None
    ) -> str:
        """The text the client gets. Raises ``GuardDeniedError`` when a ``deny_on`` type is found."""
        return screen_text(self.response_screen(rules, status=status), text, restorer)

    def stream_screener(
        self, rules: ResponseRules, restorer: Restorer | None, *, status: int | None = None
    ) -> StreamScreener:
        """One per streamed response; feed it every text delta of a choice, then flush."""
        return StreamScreener(self.response_screen(rules, status=status), restorer)
