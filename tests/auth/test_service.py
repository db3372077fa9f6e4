"""open_identity: the lifespan wiring the app uses (server secret, authenticator, last-used writer)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from gateway.auth.keys import SERVER_SECRET_FILE
from gateway.auth.models import ApiKey
from gateway.auth.service import open_identity
from gateway.config import GatewayConfig
from gateway.db import migrate
from gateway.db.engine import create_engine, create_sessionmaker, database_url
from gateway.secrets import SecretResolver


async def test_identity_opens_authenticates_and_flushes_last_used_on_close(tmp_path: Path) -> None:
    config = GatewayConfig.model_validate({"database": {"url": "sqlite:///state/gw.db"}})
    config.source = str(tmp_path / "gateway.yaml")
    await migrate.upgrade_async(database_url(config.database, tmp_path))
    engine = create_engine(config.database, tmp_path)
    sessions = create_sessionmaker(engine)
    try:
        identity = await open_identity(config, sessions, SecretResolver())
        assert (tmp_path / "state" / SERVER_SECRET_FILE).exists()
        view, issued = await identity.store.create_key("test", name="svc")
        principal = await identity.authenticator.authenticate({"x-api-key": issued.plaintext.reveal()})
        assert principal.key_id == view.id
        await identity.aclose()
        async with sessions() as session:
            assert (await session.scalars(select(ApiKey.last_used_at))).one() is not None

        # Reopened (a restart): the generated server secret is reused, so the key still works.
        again = await open_identity(config, sessions, SecretResolver(), background=False)
        assert (
            await again.authenticator.authenticate({"x-api-key": issued.plaintext.reveal()})
        ).key_id == view.id
        await again.aclose()
    finally:
        await engine.dispose()
