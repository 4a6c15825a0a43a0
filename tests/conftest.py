"""Shared fixtures. Database fixtures live in db_fixtures.py."""

from __future__ import annotations

from tests.db_fixtures import db_url, postgres_url, sqlite_url  # noqa: F401
