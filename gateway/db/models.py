"""Every module that defines tables, so Alembic and the app see the whole schema at once."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from gateway.db.base import Base

#: One entry per area that owns tables; each has its own Alembic revision.
MODEL_MODULES = (
    "gateway.auth.models",  # 0001_identity: teams, api keys, admin audit
    "gateway.usage.models",  # 0002_usage: usage and decision records, rollups
    "gateway.limits.models",  # 0003_limits: persisted spend for budgets
)


def load_metadata() -> MetaData:
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return Base.metadata
