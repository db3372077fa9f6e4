"""Anonymization with presidio-anonymizer operators, and the placeholders of reversible mode."""

from __future__ import annotations

import re
from collections.abc import Callable

from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

from gateway.errors import ConfigError
from gateway.guards.config import GuardsConfig, OperatorSpec

#: A numbered placeholder of reversible mode, e.g. ``<EMAIL_ADDRESS_1>``.
PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*_\d+)>")


class Restorer:
    """Maps the numbered placeholders of one request back to the original values.

    The same value of the same type gets the same placeholder everywhere in the request, so
    the model can refer to it consistently.
    """

    def __init__(self) -> None:
        self._originals: dict[str, str] = {}
        self._placeholders: dict[tuple[str, str], str] = {}
        self._counters: dict[str, int] = {}
        self.max_placeholder_len = 0

    def placeholder_for(self, entity_type: str, value: str) -> str:
        key = (entity_type, value)
        existing = self._placeholders.get(key)
        if existing is not None:
            return existing
        number = self._counters.get(entity_type, 0) + 1
        self._counters[entity_type] = number
        placeholder = f"<{entity_type}_{number}>"
        self._placeholders[key] = placeholder
        self._originals[placeholder[1:-1]] = value
        self.max_placeholder_len = max(self.max_placeholder_len, len(placeholder))
        return placeholder

    def restore(self, text: str) -> str:
        if not self._originals or "<" not in text:
            return text
        originals = self._originals
        return PLACEHOLDER.sub(lambda m: originals.get(m.group(1), m.group(0)), text)

    def __len__(self) -> int:
        return len(self._originals)

    def __repr__(self) -> str:  # never show the values
        return f"Restorer({len(self._originals)} placeholders)"


def _operator_config(entity_type: str, spec: OperatorSpec, encrypt_key: str | None) -> OperatorConfig:
    if spec.type == "replace":
        return OperatorConfig("replace", {"new_value": spec.new_value} if spec.new_value else {})
    if spec.type == "mask":
        params = {
            "masking_char": spec.masking_char,
            "chars_to_mask": spec.chars_to_mask,
            "from_end": spec.from_end,
        }
        return OperatorConfig("mask", params)
    if spec.type == "hash":
        hash_params: dict[str, str] = {"hash_type": spec.hash_type}
        if spec.salt is not None:
            hash_params["salt"] = spec.salt
        return OperatorConfig("hash", hash_params)
    if spec.type == "encrypt":
        if encrypt_key is None:
            raise ConfigError(f"guards.operators.{entity_type}: 'encrypt' needs guards.encrypt_key")
        return OperatorConfig("encrypt", {"key": encrypt_key})
    return OperatorConfig(spec.type, {})


class Redactor:
    """Applies the configured operator of each entity type to the findings in a text."""

    def __init__(self, config: GuardsConfig, encrypt_key: str | None) -> None:
        if encrypt_key is not None and len(encrypt_key.encode("utf-8")) not in (16, 24, 32):
            raise ConfigError("guards.encrypt_key: the key must be 16, 24 or 32 bytes long")
        self._engine = AnonymizerEngine()  # type: ignore[no-untyped-call]
        self._operators: dict[str, OperatorConfig] = {}
        for entity_type, spec in config.operators.items():
            name = "DEFAULT" if entity_type == "default" else entity_type
            self._operators[name] = _operator_config(entity_type, spec, encrypt_key)
        self._operators.setdefault("DEFAULT", OperatorConfig("replace", {}))

    def anonymize(self, text: str, results: list[RecognizerResult]) -> str:
        if not results:
            return text
        return self._engine.anonymize(text, results, self._operators, merge_entities_with_spaces=False).text

    def to_placeholders(self, text: str, results: list[RecognizerResult], restorer: Restorer) -> str:
        if not results:
            return text
        # presidio works from the end of the text; numbering first keeps reading order.
        for result in results:
            restorer.placeholder_for(result.entity_type, text[result.start : result.end])
        operators = {
            entity_type: OperatorConfig("custom", {"lambda": _placeholder_fn(restorer, entity_type)})
            for entity_type in {r.entity_type for r in results}
        }
        return self._engine.anonymize(text, results, operators, merge_entities_with_spaces=False).text


def _placeholder_fn(restorer: Restorer, entity_type: str) -> Callable[[str], str]:
    return lambda value: restorer.placeholder_for(entity_type, value)
