"""Recognizers for credentials: provider API keys, AWS access key ids, GitHub tokens, JWTs, PEM keys.

Entity names: ``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ``AWS_ACCESS_KEY``, ``GITHUB_TOKEN``,
``JWT``, ``PRIVATE_KEY``. Each is looked for only when its literal prefix occurs in the text.
"""

from __future__ import annotations

import re

from presidio_anonymizer.entities import RecognizerResult

from gateway.guards.checksums import b64url_json_object
from gateway.guards.context import Recognizer

CREDENTIAL_ENTITIES = frozenset(
    {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AWS_ACCESS_KEY", "GITHUB_TOKEN", "JWT", "PRIVATE_KEY"}
)


def _looks_random(body: str, min_distinct: int) -> bool:
    # Placeholders such as "sk-xxxxxxxxxxxxxxxxxxxx" or "sk-your-key-here" are not keys.
    return len(set(body)) >= min_distinct and any(ch.isdigit() for ch in body)


class ApiKeyRecognizer:
    """OpenAI (``sk-``, ``sk-proj-``, ``sk-svcacct-``, ``sk-admin-``) and Anthropic (``sk-ant-``) keys."""

    entities = frozenset({"OPENAI_API_KEY", "ANTHROPIC_API_KEY"})
    _pattern = re.compile(r"(?<![\w-])sk-(ant-)?([A-Za-z0-9_-]{20,})(?![\w-])")

    def find(self, text: str, wanted: frozenset[str] | None = None) -> list[RecognizerResult]:
        if "sk-" not in text:
            return []
        out: list[RecognizerResult] = []
        for m in self._pattern.finditer(text):
            anthropic, body = m.group(1), m.group(2)
            if not _looks_random(body, 10) or not any(ch.isupper() for ch in body):
                continue
            entity = "ANTHROPIC_API_KEY" if anthropic else "OPENAI_API_KEY"
            out.append(RecognizerResult(entity, m.start(), m.end(), 0.95))
        return out


class AwsAccessKeyRecognizer:
    entities = frozenset({"AWS_ACCESS_KEY"})
    _pattern = re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)([A-Z0-9]{16})(?![A-Za-z0-9])")

    def find(self, text: str, wanted: frozenset[str] | None = None) -> list[RecognizerResult]:
        if "AKIA" not in text and "ASIA" not in text and "ABIA" not in text and "ACCA" not in text:
            return []
        return [
            RecognizerResult("AWS_ACCESS_KEY", m.start(), m.end(), 0.9)
            for m in self._pattern.finditer(text)
            if len(set(m.group(1))) >= 6
        ]


class GithubTokenRecognizer:
    entities = frozenset({"GITHUB_TOKEN"})
    _pattern = re.compile(
        r"(?<![\w-])(?:gh[pousr]_([A-Za-z0-9]{36,255})|github_pat_([A-Za-z0-9_]{40,255}))(?![\w-])"
    )

    def find(self, text: str, wanted: frozenset[str] | None = None) -> list[RecognizerResult]:
        if "_" not in text or ("gh" not in text and "github_pat_" not in text):
            return []
        return [
            RecognizerResult("GITHUB_TOKEN", m.start(), m.end(), 0.95)
            for m in self._pattern.finditer(text)
            if _looks_random(m.group(1) or m.group(2), 10)
        ]


class JwtRecognizer:
    """Three base64url segments whose header decodes to a JSON object naming ``alg`` or ``typ``."""

    entities = frozenset({"JWT"})
    _pattern = re.compile(
        r"(?<![\w.-])(eyJ[A-Za-z0-9_-]{5,})\.([A-Za-z0-9_-]{2,})\.([A-Za-z0-9_-]*)(?![\w.-])"
    )

    def find(self, text: str, wanted: frozenset[str] | None = None) -> list[RecognizerResult]:
        if "eyJ" not in text:
            return []
        out: list[RecognizerResult] = []
        for m in self._pattern.finditer(text):
            header = b64url_json_object(m.group(1))
            if header is None or not ({"alg", "typ"} & header.keys()):
                continue
            payload_is_json = b64url_json_object(m.group(2)) is not None
            out.append(RecognizerResult("JWT", m.start(), m.end(), 0.95 if payload_is_json else 0.8))
        return out


class PrivateKeyRecognizer:
    """A PEM private key block; a block cut off before its END line runs to the end of its body."""

    entities = frozenset({"PRIVATE_KEY"})
    _begin = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK)?-----")
    # Base64 lines, plus "Proc-Type: 4,ENCRYPTED"-style header lines of legacy PEM.
    _body = re.compile(r"(?:\r?\n(?:[A-Za-z0-9+/=]{4,}(?=\r?\n|$)|[A-Za-z\-]+: [^\r\n]*))*")

    def find(self, text: str, wanted: frozenset[str] | None = None) -> list[RecognizerResult]:
        if "-----BEGIN" not in text:
            return []
        out: list[RecognizerResult] = []
        for m in self._begin.finditer(text):
            end_marker = f"-----END {m.group(1)}PRIVATE KEY{m.group(2) or ''}-----"
            end = text.find(end_marker, m.end())
            if end >= 0:
                stop = end + len(end_marker)
            else:
                body = self._body.match(text, m.end())
                stop = body.end() if body else m.end()
            out.append(RecognizerResult("PRIVATE_KEY", m.start(), stop, 1.0))
        return out


def credential_recognizers() -> list[Recognizer]:
    return [
        ApiKeyRecognizer(),
        AwsAccessKeyRecognizer(),
        GithubTokenRecognizer(),
        JwtRecognizer(),
        PrivateKeyRecognizer(),
    ]
