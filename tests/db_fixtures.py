"""Database fixtures: a real SQLite file, and a real PostgreSQL database of the test's own.

PostgreSQL tests skip with a reason when no server answers on 127.0.0.1:5432, unless
DIGEST_REQUIRE_SERVICES=1 (set by .ci/run), which turns that skip into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

PG_ADMIN_URL = os.environ.get("DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _services_required() -> bool:
    return os.environ.get("DIGEST_REQUIRE_SERVICES", "") not in ("", "0", "false")


def _pg_unavailable(reason: str) -> None:
    if _services_required():
        pytest.fail(f"PostgreSQL is required (DIGEST_REQUIRE_SERVICES) but {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL server, dropped afterwards."""
    name = f"digest_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any driver or connection failure means: no server here
        _pg_unavailable(f"{PG_ADMIN_URL}: {str(exc).splitlines()[0]}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    return f"sqlite:///{os.path.join(tmp_path, 'state', 'digest.db')}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# A database of the tests' own, emptied before and after; two suites on one machine pick different ones.
REDIS_TEST_DB = int(os.environ.get("DIGEST_TEST_REDIS_DB", "13"))
# RESP bulk strings carry their length: a one-digit database number is "$1".
_SELECT_AND_FLUSH = (f"*2\r\n$6\r\nSELECT\r\n${len(str(REDIS_TEST_DB))}\r\n{REDIS_TEST_DB}\r\n"
                     "*1\r\n$8\r\nFLUSHDB\r\n").encode()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database on the local server for Celery tests, emptied before and after."""
    import socket

    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=2) as sock:
            sock.sendall(_SELECT_AND_FLUSH)
            reply = sock.recv(100)
    except OSError as exc:
        if _services_required():
            pytest.fail(f"Redis is required (DIGEST_REQUIRE_SERVICES) but {REDIS_HOST}:{REDIS_PORT}: {exc}")
        pytest.skip(f"Redis not available at {REDIS_HOST}:{REDIS_PORT}: {exc}")
    assert reply.startswith(b"+OK"), reply
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_TEST_DB}"
    yield url
    with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=2) as sock:
        sock.sendall(_SELECT_AND_FLUSH)
        sock.recv(100)
