"""The manage page's chat channels through Starlette's TestClient: a bad webhook is a 400 page with the
field's error and nothing stored; a good one is added, shown masked, and removed."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from digest.config import Settings
from digest.signing.links import LinkBuilder
from digest.signing.tokens import LinkSigner
from digest.store import subscribers as sub_store
from digest.store.link_keys import StoredLinkKeys
from digest.store.schema import channels
from digest.web.app import create_app
from digest.web.serve import web_options
from digest.wiring import App, secret_keys
from tests.clock import Clock
from tests.web_helpers import csrf_of

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

BASE = "https://digest.example.org"
NOW = datetime(2026, 11, 29, 9, 0, 0)


@pytest.fixture
def page(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[App, TestClient, str]]:
    data: dict[str, Any] = {"state_dir": str(tmp_path / "state"), "database": {"url": sqlite_url}, "sources": [],
                            "web": {"base_url": BASE, "secret_key": "s" * 32}, "fetch": {"allow_private": True}}
    app = App.open(Settings(**data))
    with app.engine.begin() as conn:
        sub, _ = sub_store.upsert_subscriber(conn, email="ada@example.org", keywords=["sparse attention"], now=NOW)
    clock = Clock(NOW)
    signer = LinkSigner(secret_keys(app.settings))
    links = LinkBuilder(BASE, signer, now=clock, key_of=StoredLinkKeys(app.engine))
    web = create_app(app.engine, signer, scanner_window_s=0, now=clock, options=web_options(app.settings),
                     mailer=app.confirmation_mailer())
    yield app, TestClient(web, base_url=BASE), urlsplit(links.manage_url(sub.id)).path
    app.close()


def _stored(app: App) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(channels)).scalar_one())


def test_a_bad_webhook_is_a_field_error_and_a_good_one_is_added_and_removed(page: Any) -> None:
    app, client, url = page
    form = client.get(url)
    assert '<label for="hook_url">' in form.text and '<label for="hook_token">' in form.text
    for data, field, needle in (
        ({"hook_url": "http://169.254.169.254/x/SECRET"}, "hook_url", "metadata"),
        ({"hook_url": "https://127.0.0.1", "hook_kind": "matrix", "hook_token": "t"}, "hook_room", "Matrix room"),
        ({"hook_url": "https://127.0.0.1", "hook_kind": "matrix", "hook_room": "!r:x.org"}, "hook_token", "token"),
    ):
        r = client.post(f"{url}/channels", data={**data, **csrf_of(form)})
        assert r.status_code == 400 and f'id="{field}-error"' in r.text and needle in r.text, r.text
        assert f'id="{field}"' in r.text and "SECRET" not in r.text and 'value="t"' not in r.text
    assert _stored(app) == 0

    r = client.post(f"{url}/channels", data={"hook_url": "http://127.0.0.1:9/SECRET", "hook_kind": "slack",
                                             **csrf_of(form)}, follow_redirects=False)
    assert r.status_code == 303 and _stored(app) == 1
    after = client.get(r.headers["location"])
    assert "Chat channel added" in after.text and "slack http://127.0.0.1:9/***" in after.text
    assert "SECRET" not in after.text
    export = client.get(f"{url}/export")
    assert export.json()["chat_channels"][0]["channel"] == "slack http://127.0.0.1:9/***"
    assert "SECRET" not in export.text  # the export names the channel, never its secret
    r = client.post(f"{url}/channels/remove", data={"channel": "1", **csrf_of(after)}, follow_redirects=False)
    assert r.status_code == 303 and _stored(app) == 0
    assert client.post(f"{url}/channels/remove", data={"channel": "1"}).status_code == 403  # no CSRF token
