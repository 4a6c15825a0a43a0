"""Shared fixtures. Database fixtures live in db_fixtures.py."""

from __future__ import annotations

from tests.db_fixtures import db_url, postgres_url, redis_url, sqlite_url  # noqa: F401

# --- smtp fixtures (mail layer) ---
# make_smtp_server / smtp_server: a real aiosmtpd server on 127.0.0.1, defined in tests/smtp_server.py.
from tests.smtp_server import make_smtp_server, smtp_server  # noqa: E402, F401

# --- end smtp fixtures (mail layer) ---
