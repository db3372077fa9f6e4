"""Database access: the declarative base, engines and migrations."""

from gateway.db.base import Base

__all__ = ["Base"]
