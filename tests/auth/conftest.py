"""Identity test fixtures."""

from tests.db.fixtures import *  # noqa: F403
