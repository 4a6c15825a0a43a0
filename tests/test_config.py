"""Settings: embedded defaults, YAML file, DIGEST_ environment, errors that name the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digest.config import Settings, load_settings, masked_url
from digest.errors import ConfigError


@pytest.fixture(autouse=True)
def _no_digest_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DIGEST_ variable from the suite or the shell: each test names its own (_load's env)."""
    for name in list(os.environ):
        if name.upper().startswith("DIGEST_"):
            monkeypatch.delenv(name)


def _load(path: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in (env or {}).items():
            mp.setenv(name, value)
        return load_settings(path)


def test_embedded_defaults_need_no_file() -> None:
    s = _load(None, {})
    assert s.digest.top_k == 10
    assert s.delivery.method == "outbox"
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("state/digest.db")
    assert s.outbox_path == Path("state") / "outbox"
    assert [src.path for src in s.sources] == ["builtin:arxiv-cs-2024-11-28.xml"]


def test_file_then_environment_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("digest:\n  top_k: 5\n  min_score: 0.2\nsmtp:\n  host: mail.example.org\n")
    s = _load(cfg, {"DIGEST_DIGEST__TOP_K": "7", "DIGEST_SMTP__PASSWORD": "12345"})
    assert s.digest.top_k == 7  # environment wins over the file
    assert s.digest.min_score == 0.2  # the file wins over the default
    assert s.smtp.host == "mail.example.org"
    assert s.smtp.password is not None and s.smtp.password.get_secret_value() == "12345"
    assert "12345" not in repr(s) and "12345" not in str(s.smtp)


def test_config_path_from_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("state_dir: /tmp/elsewhere\n")
    assert _load(None, {"DIGEST_CONFIG": str(cfg)}).state_dir == "/tmp/elsewhere"


@pytest.mark.parametrize(
    ("yaml_text", "env", "named"),
    [
        ("digest:\n  top_k: 0\n", {}, "digest.top_k"),
        ("digest:\n  top_k: many\n", {}, "digest.top_k"),
        ("smtp:\n  hots: x\n", {}, "smtp.hots: unknown key"),
        ("1: x\n", {}, "1: unknown key"),
        ("delivery:\n  method: pigeon\n", {}, "delivery.method"),
        ("delivery:\n  from_addr: not-an-address\n", {}, "delivery.from_addr"),
        # The rule every address follows (digest.addresses), for the sender too.
        ("delivery:\n  from_addr: 'a(comment)@example.org'\n", {}, "delivery.from_addr"),
        ("delivery:\n  from_addr: 'Digest <digest@example.org>'\n", {}, "delivery.from_addr"),
        ("delivery:\n  from_addr: digest@lab\n", {}, "delivery.from_addr"),
        ("", {"DIGEST_DELIVERY__FROM_ADDR": "digest@ex\u0430mple.org"}, "delivery.from_addr"),
        ("schedule:\n  timezone: Mars/Olympus\n", {}, "schedule.timezone"),
        ("schedule:\n  cron: '61 * * * *'\n", {}, "schedule.cron"),
        ("sources:\n  - {name: a, kind: gopher, path: x}\n", {}, "sources.0.kind"),
        ("sources:\n  - {name: a}\n", {}, "sources.0"),
        ("sources:\n  - {name: a, url: 'ftp://x/feed'}\n", {}, "sources.0"),
        ("web:\n  base_url: localhost\n", {}, "web.base_url"),
        ("", {"DIGEST_DIGEST__QUIET_DAY": "sometimes"}, "digest.quiet_day"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, yaml_text: str, env: dict[str, str], named: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        _load(cfg, env)
    message = str(err.value)
    assert named in message
    assert "\n" not in message


def test_missing_and_malformed_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.yaml"):
        _load(tmp_path / "nope.yaml", {})
    bad = tmp_path / "bad.yaml"
    bad.write_text("digest: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml line"):
        _load(bad, {})
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        _load(listy, {})


def test_secret_is_masked_in_errors_and_urls() -> None:
    assert masked_url("postgresql://user:hunter2@db:5432/x") == "postgresql://user:***@db:5432/x"
    assert masked_url("redis://:hunter2@broker:6379/0") == "redis://:***@broker:6379/0"
    assert masked_url("http://user:hun@ter2@feeds.example.org/rss?a=b@c") == "http://user:***@feeds.example.org/rss?a=b@c"
    assert masked_url("https://feeds.example.org:8443/rss") == "https://feeds.example.org:8443/rss"
    with pytest.raises(ConfigError) as err:
        _load(None, {"DIGEST_SMTP__PASSWORD": "hunter2", "DIGEST_SMTP__PORT": "0"})
    assert "hunter2" not in str(err.value)


def test_example_config_documents_every_key() -> None:
    example = Path(__file__).parent.parent / "config.example.yaml"
    s = _load(example, {})
    text = example.read_text()
    for section in ("database", "digest", "delivery", "smtp", "fetch", "web", "feedback", "schedule"):
        model = getattr(s, section)
        for key in type(model).model_fields:
            assert f"{key}:" in text, f"config.example.yaml does not document {section}.{key}"
    for key in ("state_dir", "sources", "name", "url", "path", "kind"):
        assert f"{key}:" in text


def test_the_sender_address_is_normalised_and_may_be_this_host() -> None:
    assert Settings().delivery.from_addr == "digest@localhost"
    got = Settings.model_validate({"delivery": {"from_addr": "Digest@B\u00dcCHER.Example"}}).delivery.from_addr
    assert got == "Digest@xn--bcher-kva.example"


def test_environment_variables_that_are_not_settings_are_left_alone(tmp_path: Path) -> None:
    # The README gives DIGEST_CACHE_DIR for the eval cache: it names no setting, so no command may choke on it.
    s = _load(None, {"DIGEST_CACHE_DIR": str(tmp_path), "DIGEST_STATE_DIR": str(tmp_path / "st"),
                               "DIGEST_SOMETHING_ELSE": "1"})
    assert s.state_dir == str(tmp_path / "st")
    # A typo inside a real section is still a setting, and still refused by name.
    with pytest.raises(ConfigError, match=r"\+ DIGEST_DIGEST__TOP_KK: digest.top_kk: unknown key"):
        _load(None, {"DIGEST_DIGEST__TOP_KK": "3"})


def test_a_section_from_the_environment_is_json_and_merges_with_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("digest:\n  top_k: 5\n  min_score: 0.2\n")
    s = _load(cfg, {"DIGEST_DIGEST": '{"top_k": 4}', "DIGEST_SOURCES": '[{"name": "a", "url": "https://x.org/rss"}]'})
    assert (s.digest.top_k, s.digest.min_score) == (4, 0.2)
    assert [src.name for src in s.sources] == ["a"]
    with pytest.raises(ConfigError) as err:
        _load(cfg, {"DIGEST_DIGEST": "{top_k: 4"})
    assert str(err.value) == "config error: DIGEST_DIGEST: not valid JSON for a section or list"


def test_the_file_cannot_reach_the_loader_options(tmp_path: Path) -> None:
    # Settings(**values) also takes pydantic-settings' own options: a key like _env_prefix is refused.
    cfg = tmp_path / "c.yaml"
    cfg.write_text("_env_prefix: OTHER_\n")
    with pytest.raises(ConfigError, match="_env_prefix: unknown key"):
        _load(cfg, {"OTHER_DIGEST__TOP_K": "3"})
