"""Opening the database: engine, connection check and Alembic migrations to head."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from digest.config import masked_url
from digest.errors import StateFileError, StoreError

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_REVISION = re.compile(r"""^revision\s*=\s*["']([^"']+)["']""", re.MULTILINE)
_DOWN_REVISION = re.compile(r"""^down_revision\s*=\s*["']([^"']+)["']""", re.MULTILINE)


def _alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA foreign_keys=ON")
    # WAL lets the web app read while a run writes; busy_timeout waits out a concurrent writer.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=15000")
    # In WAL mode NORMAL still survives a killed process (what the ledger must outlive); only a power
    # cut may lose the last commits. FULL syncs on every commit: milliseconds per ledger row.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def create_db_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"database.url is not a database URL: {masked_url(url)}") from None
    kwargs: dict[str, object] = {}
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            folder = Path(db).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot reach database {masked_url(url)}: cannot create {folder}: "
                                 f"{exc.strerror or exc}") from None
    else:
        kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=5)
        if parsed.get_backend_name() == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        raise StoreError(f"cannot use database {masked_url(url)}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


@functools.cache
def _head_from_files() -> str | None:
    """The head revision read from the migration files' own lines, without importing Alembic (about
    0.2 s that `digest subscribe` and `digest status` need not pay when the schema is current);
    None when the files do not make one plain chain (then Alembic decides)."""
    revisions, downs = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        rev, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if rev is None:
            return None
        revisions.add(rev.group(1))
        if down is not None:
            downs.add(down.group(1))
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 else None


def _stored_revision(engine: Engine) -> str | None:
    """The schema's revision as Alembic records it (alembic_version), read with plain SQL."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return str(rows[0]) if len(rows) == 1 else None


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to revision (head by default). Data already stored is kept."""
    from alembic import command

    cfg = _alembic_config()
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        return
    # SQLite's own procedure for changes ALTER TABLE cannot make (a table copied into a new one):
    # foreign keys off, set outside any transaction, or dropping the old table would cascade into
    # every row that refers to it; checked before the commit, and on again for the pool.
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.commit()
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise StoreError(f"migration left {len(broken)} row(s) pointing at nothing "
                                     f"(first: table {broken[0][0]}, row {broken[0][1]}); nothing was changed")
        finally:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()


def _existing_sqlite_file(url: str) -> Path | None:
    """The SQLite file this URL names, when it exists already (None for other databases)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    db = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    path = Path(db).expanduser()
    return path if path.exists() else None


def _holds_a_schema(path: Path) -> bool:
    """Whether this SQLite file has a schema version, read without writing a byte (the engine's own
    connection would switch the file to WAL). A file that is not a database at all counts as holding
    one: the engine's error then names what is wrong with it."""
    if path.stat().st_size == 0:
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'")
            return found.fetchone() is not None
    except sqlite3.Error:
        return True


def open_engine(url: str, *, upgrade: bool = True) -> Engine:
    """An engine on a reachable database whose schema is at head. Only a missing SQLite file is
    created: one that exists but holds no schema version (emptied, truncated to nothing, another
    program's) is refused, never silently started over, so a ledger is not lost without a word."""
    existing = _existing_sqlite_file(url)
    if existing is not None and not _holds_a_schema(existing):
        raise StateFileError(f"database file {existing} exists but holds no digest schema (empty or not this "
                             "program's): refusing to start it over; restore a backup, or move it away to begin anew")
    engine = create_db_engine(url)
    try:
        quick = _head_from_files()
        if quick is None or _stored_revision(engine) != quick:  # Alembic only when it may have work to do
            rev = current_revision(engine)
            if upgrade and rev != head_revision():
                log.info("migrating database %s from %s to %s", masked_url(url), rev, head_revision())
                migrate(engine)
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "unreachable"
        raise StoreError(f"cannot reach database {masked_url(url)}: {reason}") from None
    except SQLAlchemyError as exc:  # reached, but not a database we can use (a file that is not SQLite)
        engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StoreError(f"cannot use database {masked_url(url)}: {reason}") from None
    return engine
