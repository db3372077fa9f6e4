"""Settings of the guards (section ``guards`` of the config file).

Example::

    guards:
      enabled: true
      score_threshold: 0.5
      reversible: false
      encrypt_key: env:GUARDS_ENCRYPT_KEY
      operators:
        default: {type: replace}
        CREDIT_CARD: {type: mask, masking_char: "*", chars_to_mask: 12, from_end: false}
        US_SSN: {type: redact}
      custom:
        - {name: employee-id, entity: EMPLOYEE_ID, pattern: "EMP-[0-9]{6}", score: 0.6, context: [employee]}
      deny_lists:
        - {entity: PROJECT_CODENAME, words: [bluebird, nightjar]}
      injection:
        enabled: true
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

OperatorType = Literal["replace", "mask", "hash", "redact", "encrypt", "keep"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OperatorSpec(_Strict):
    """One presidio-anonymizer operator and its parameters (only those of its type apply)."""

    type: OperatorType = "replace"
    #: replace: the text put in place of the value; default ``<ENTITY_TYPE>``.
    new_value: str | None = None
    #: mask: character, how many characters, and whether to count from the end.
    masking_char: str = Field(default="*", min_length=1, max_length=1)
    chars_to_mask: int = Field(default=100, ge=0)
    from_end: bool = False
    #: hash: algorithm; a fixed salt (>= 16 characters) makes hashes comparable across requests.
    hash_type: Literal["sha256", "sha512"] = "sha256"
    salt: str | None = Field(default=None, min_length=16)


class CustomRecognizerConfig(_Strict):
    name: str
    #: Entity type reported (use upper-case names, e.g. ``EMPLOYEE_ID``).
    entity: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    pattern: str
    score: float = Field(default=0.6, ge=0.0, le=1.0)
    #: Words near a match that raise its score by ``context_boost``.
    context: list[str] = []
    context_boost: float = Field(default=0.3, ge=0.0, le=1.0)
    ignore_case: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if re.compile(value).match("") is not None:
            raise ValueError("pattern matches the empty string")
        return value


class DenyListConfig(_Strict):
    entity: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    words: list[str] = Field(min_length=1)
    ignore_case: bool = True

    @field_validator("words")
    @classmethod
    def _non_empty_words(cls, value: list[str]) -> list[str]:
        if any(not w.strip() for w in value):
            raise ValueError("deny-list words must not be empty")
        return value


class InjectionConfig(_Strict):
    enabled: bool = True
    #: Override the weight of a signal (0 disables it); see docs/guards.md for the names.
    weights: dict[str, float] = {}
    #: Extra instruction-override phrases (matched case-insensitively as substrings).
    extra_phrases: list[str] = []
    #: Shortest base64/hex run looked at as an encoded payload.
    min_payload_chars: int = Field(default=40, ge=16)

    @field_validator("weights")
    @classmethod
    def _weights_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        for name, weight in value.items():
            if not 0.0 <= weight <= 1.0:
                raise ValueError(f"weight of {name!r} must be within [0, 1]")
        return value


class GuardsConfig(_Strict):
    enabled: bool = True
    #: A finding counts (in features, redaction and response screening) from this score up.
    score_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    #: Operators per entity type; the key ``default`` applies to types not listed.
    operators: dict[str, OperatorSpec] = {"default": OperatorSpec()}
    #: Send numbered placeholders upstream and restore the values in the answer.
    reversible: bool = False
    #: Secret reference (``env:NAME`` or ``file:/path``) of the AES key used by ``encrypt``
    #: (16, 24 or 32 bytes).
    encrypt_key: str | None = None
    custom: list[CustomRecognizerConfig] = []
    deny_lists: list[DenyListConfig] = []
    injection: InjectionConfig = InjectionConfig()

    @field_validator("encrypt_key")
    @classmethod
    def _is_reference(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("env:", "file:")):
            raise ValueError("must be a secret reference such as 'env:GUARDS_ENCRYPT_KEY' or 'file:/path'")
        return value

    @model_validator(mode="after")
    def _encrypt_needs_key(self) -> GuardsConfig:
        uses_encrypt = any(spec.type == "encrypt" for spec in self.operators.values())
        if uses_encrypt and self.encrypt_key is None:
            raise ValueError("an 'encrypt' operator is configured but encrypt_key is not set")
        return self

    def operator_for(self, entity_type: str) -> OperatorSpec:
        return self.operators.get(entity_type) or self.operators.get("default") or OperatorSpec()
