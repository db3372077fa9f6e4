"""Apply a decision's request transform to the canonical (OpenAI-shaped) request body.

A pure function: it returns a new body and never touches the one it was given. Headers, the
redaction list and tags are not body changes; the pipeline passes them on to routing, the
guards and the usage record.

- ``model``: replaces ``body["model"]``; the pipeline then routes by the new public name.
- ``max_tokens``: a ceiling. It lowers a larger client value, never raises a lower one, and is
  set when the client gave none. It is written to the field the client used
  (``max_completion_tokens`` or ``max_tokens``, both when both are present); when neither was
  given, to ``max_completion_tokens`` for chat completions (``max_tokens`` is deprecated there
  and refused by the o-series) and ``max_tokens`` otherwise.
- ``system_prompt.prepend``: goes in front of the text of the first system (or developer)
  message when there is one, as its own system message before the first message otherwise.
  Merging keeps a single system message, which every provider accepts (Anthropic and Gemini
  take one system text; the translators would otherwise have to join them).
- ``system_prompt.append``: goes after the text of the last system message when there is one,
  as a new system message before the first message otherwise.
"""

from __future__ import annotations

from typing import Any

from gateway.policy.decision import Transform

SYSTEM_ROLES = ("system", "developer")


def _cap(body: dict[str, Any], ceiling: int) -> None:
    present = [key for key in ("max_completion_tokens", "max_tokens") if body.get(key) is not None]
    if not present:
        body["max_completion_tokens" if "messages" in body else "max_tokens"] = ceiling
        return
    for key in present:
        value = body[key]
        if not isinstance(value, int) or isinstance(value, bool) or value > ceiling:
            body[key] = ceiling


def _join(first: str, second: str) -> str:
    return f"{first}\n\n{second}" if first and second else first or second


def _with_text(message: dict[str, Any], prepend: str = "", append: str = "") -> dict[str, Any]:
    content = message.get("content")
    updated = dict(message)
    if isinstance(content, list):
        parts = list(content)
        if prepend:
            parts.insert(0, {"type": "text", "text": prepend})
        if append:
            parts.append({"type": "text", "text": append})
        updated["content"] = parts
    else:
        text = content if isinstance(content, str) else ""
        updated["content"] = _join(_join(prepend, text), append)
    return updated


def _system_prompt(messages: list[Any], prepend: str | None, append: str | None) -> list[Any]:
    messages = list(messages)
    system_at = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") in SYSTEM_ROLES]
    if prepend:
        if system_at:
            messages[system_at[0]] = _with_text(messages[system_at[0]], prepend=prepend)
        else:
            messages.insert(0, {"role": "system", "content": prepend})
            system_at = [0]
    if append:
        if system_at:
            last = system_at[-1]
            messages[last] = _with_text(messages[last], append=append)
        else:
            messages.insert(0, {"role": "system", "content": append})
    return messages


def apply_transform(body: dict[str, Any], transform: Transform) -> dict[str, Any]:
    """The request body with the decision's model, max_tokens and system prompt applied."""
    result = dict(body)
    if transform.model:
        result["model"] = transform.model
    if transform.max_tokens is not None and ("messages" in result or "prompt" in result):
        _cap(result, transform.max_tokens)
    sp = transform.system_prompt
    if sp is not None and (sp.prepend or sp.append) and isinstance(result.get("messages"), list):
        result["messages"] = _system_prompt(result["messages"], sp.prepend, sp.append)
    return result
