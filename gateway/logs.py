"""Process logging: one JSON object per line, with credentials scrubbed on the way out.

Scrubbing is a last line of defence, not the mechanism: code never logs secrets on purpose;
this filter catches what a library or a careless message might still carry (bearer tokens,
gateway keys, provider keys) and replaces it before the line is written.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime

import orjson

_CREDENTIAL = re.compile(
    r"(gw-[A-Za-z0-9]+_[A-Za-z0-9_\-]{8,}"  # gateway keys
    r"|sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{12,}"  # OpenAI / Anthropic style keys
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]{12,}=*"  # bearer tokens, JWTs
    r"|AKIA[0-9A-Z]{16})"
)


def scrub(text: str) -> str:
    return _CREDENTIAL.sub("[REDACTED]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if record.name == "gateway.access":
            # Access-log lines are built as JSON already, from fields that never hold secrets.
            return record.getMessage()
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "info") -> None:
    # The JSON lines never show the caller's file and line, thread or process, so skip
    # collecting them for every record: the logging HOWTO's "Optimization" section. Measured:
    # about a third of the access log's cost per request (py-spy, bench/README.md).
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own loggers go through the same handler and format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
