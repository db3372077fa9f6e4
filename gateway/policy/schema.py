"""JSON Schema of the policy input, generated from the TypedDicts in ``gateway.policy.input``.

``python -m gateway.policy.schema`` rewrites ``input.schema.json`` beside this file; a test
fails when the file and the code disagree. Use it with OPA's type checker:
``opa check --schema gateway/policy/input.schema.json policies/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from gateway.policy.input import InputDocument

SCHEMA_PATH = Path(__file__).with_name("input.schema.json")


def input_schema() -> dict[str, Any]:
    schema = TypeAdapter(InputDocument).json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://opa-ai-gateway.dev/schemas/policy-input.json",
        **schema,
    }


def render() -> str:
    return json.dumps(input_schema(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")


if __name__ == "__main__":
    main()
