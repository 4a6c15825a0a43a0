"""Settings: embedded defaults < YAML file < DIGEST_* environment, validated once at start-up.

Every key can be overridden from the environment as DIGEST_<SECTION>__<KEY> (for example
DIGEST_SMTP__PASSWORD or DIGEST_DIGEST__TOP_K); top-level keys as DIGEST_<KEY> (DIGEST_STATE_DIR).
pydantic-settings reads the environment: a value is converted to the key's type ("10" a number,
"true" a boolean), a whole section or the source list is given as JSON.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from digest.addresses import AddressError, normalise_address
from digest.errors import ConfigError

ENV_PREFIX = "DIGEST_"
# A DIGEST_ variable whose first part names no setting (DIGEST_CONFIG, the eval cache's
# DIGEST_CACHE_DIR, the tests' switches) is not read; one inside a section that names no key is refused.
_ENV_DELIMITER = "__"
# The YAML file's values while load_settings builds the Settings: the layer below the environment
# (settings_customise_sources is a class method; this is how one call hands it a source).
_file_values: ContextVar[Mapping[str, Any] | None] = ContextVar("digest_file_values", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _numeric_port(url: str | None) -> str | None:
    """The URL as it is, if its port (when it has one) is a number: caught here, with the key named,
    rather than as a stack trace from the driver at the first connection."""
    if url is not None:
        try:
            _ = urlsplit(url).port  # raises ValueError for a port that is not a number
        except ValueError:
            raise ValueError(f"the port in {masked_url(url)} is not a number from 0 to 65535") from None
    return url


class DatabaseSettings(_Section):
    # None: a SQLite file under state_dir.
    url: str | None = None

    _port = field_validator("url")(_numeric_port)


SourceKind = Literal["auto", "arxiv_rss", "arxiv_api", "hf_daily", "rss"]


class SourceSettings(_Section):
    name: str = Field(min_length=1, max_length=100)
    url: str | None = None
    path: str | None = None
    kind: SourceKind = "auto"

    @model_validator(mode="after")
    def _one_location(self) -> SourceSettings:
        if bool(self.url) == bool(self.path):
            raise ValueError("give exactly one of url or path")
        if self.url and not re.match(r"^https?://", self.url, re.IGNORECASE):
            raise ValueError(f"url must be http or https: {masked_url(self.url)}")
        return self

    @property
    def location(self) -> str:
        return self.url or self.path or ""


class DigestSettings(_Section):
    top_k: int = Field(default=10, ge=1, le=100)
    min_score: float = Field(default=0.1, ge=0.0)
    quiet_day: Literal["skip", "note"] = "skip"
    # Papers first seen within this many days before the digest date are candidates.
    lookback_days: int = Field(default=3, ge=1, le=60)
    # arXiv "replace" announcements of papers never seen before are old papers: off by default.
    include_replacements: bool = False
    abstract_chars: int = Field(default=420, ge=80, le=5000)
    # 0: plain top-k by score; up to 1: trade score for picks that do not repeat each other (MMR).
    diversity: float = Field(default=0.3, ge=0.0, le=1.0)
    # Where a source has Hugging Face upvotes, this much of a score can come from popularity.
    popularity_weight: float = Field(default=0.0, ge=0.0, le=1.0)
    # A "trending today" block of the most upvoted new papers not already picked; 0 turns it off.
    trending_k: int = Field(default=3, ge=0, le=20)
    # Give the last pick to a paper unlike the others, so feedback on it widens what is learned.
    explore: bool = False
    templates_dir: str | None = None  # operator overrides, searched before the bundled templates


class DeliverySettings(_Section):
    method: Literal["outbox", "smtp"] = "outbox"
    outbox_dir: str | None = None  # None: <state_dir>/outbox
    from_addr: str = "digest@localhost"
    from_name: str = "Paper digest"
    # A temporarily refused message (4xx, lost connection) is retried after retry_backoff_s, doubling
    # per attempt up to retry_backoff_max_s, until retry_for_h after its digest was first planned.
    retry_backoff_s: float = Field(default=300.0, ge=0, le=86400)
    retry_backoff_max_s: float = Field(default=7200.0, ge=0, le=86400)
    retry_for_h: float = Field(default=24.0, gt=0, le=24 * 14)
    # Consecutive permanent refusals of an address (hard bounces) before it is suspended.
    max_hard_bounces: int = Field(default=3, ge=1, le=100)

    @field_validator("from_addr")
    @classmethod
    def _valid_from(cls, v: str) -> str:
        # The rule every address follows (digest.addresses), and this host's own name besides.
        try:
            return normalise_address(v, own_host=True)
        except AddressError as exc:
            raise ValueError(f"not an email address: {v[:300]!r} ({exc})") from None


class SmtpSettings(_Section):
    host: str = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None  # set it from the environment: DIGEST_SMTP__PASSWORD
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    # Only for tests and private relays with their own CA: a PEM bundle to trust.
    ca_file: str | None = None
    # At most this many messages per second; 0: no limit.
    rate_per_s: float = Field(default=0.0, ge=0, le=10000)
    # The run pauses after this many delivery errors in a row (the rest wait for the next run).
    max_consecutive_errors: int = Field(default=5, ge=1, le=10000)


class FetchSettings(_Section):
    connect_timeout_s: float = Field(default=10.0, gt=0, le=120)
    read_timeout_s: float = Field(default=30.0, gt=0, le=600)
    deadline_s: float = Field(default=60.0, gt=0, le=3600)
    max_bytes: int = Field(default=20_000_000, ge=1024, le=500_000_000)
    # Feeds are untrusted: loopback and private addresses are refused unless allowed here; link-local
    # and cloud metadata addresses always (digest.ingest.transport.refusal).
    allow_private: bool = False
    user_agent: str = "digest/0.1 (+https://github.com/)"
    # Where `digest star --fetch-missing` looks arXiv ids up (the arXiv API's query endpoint).
    arxiv_api_url: str = "https://export.arxiv.org/api/query"

    @field_validator("arxiv_api_url")
    @classmethod
    def _http_api(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/?#]+[^\s?#]*$", v, re.IGNORECASE):
            raise ValueError(f"must be an http(s) URL without a query: {v!r}")
        return v


class WebhookSettings(_Section):
    # Chat channels (Slack, Discord, Matrix, JSON): each post's whole deadline (connect, send, answer).
    timeout_s: float = Field(default=15.0, gt=0, le=300)
    # A channel whose digests failed this many times in a row is paused (`digest status` lists it).
    pause_after_failures: int = Field(default=3, ge=1, le=100)


class WebSettings(_Section):
    base_url: str = "http://localhost:8000"
    # None: a random key generated once and kept in <state_dir>/secret_key.
    secret_key: SecretStr | None = None
    # The subscribe page (double opt-in); false: only `digest subscribe` adds subscribers.
    signup_enabled: bool = True
    # /search over every stored paper for anyone; false: only from a reader's manage page (their link).
    public_search: bool = False
    # A sign-up not confirmed within this many hours is dropped; its link stops working.
    signup_expiry_hours: int = Field(default=48, ge=1, le=720)
    # Sign-ups accepted per IP and per address within signup_window_s; 0 turns that limit off.
    signup_limit_per_ip: int = Field(default=10, ge=0, le=100_000)
    signup_limit_per_address: int = Field(default=3, ge=0, le=1000)
    signup_window_s: int = Field(default=3600, ge=60, le=7 * 86400)
    # The manage link in each digest (edit, pause, export, delete) works this many days.
    manage_link_days: int = Field(default=30, ge=1, le=365)

    @field_validator("base_url")
    @classmethod
    def _http_base(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v, re.IGNORECASE):
            raise ValueError(f"must be an http(s) URL: {v!r}")
        return v.rstrip("/")


class FeedbackSettings(_Section):
    # Clicks this soon after delivery, and HEAD requests, are most likely mail scanners: kept, flagged,
    # never used as labels. 0 turns the flagging off.
    scanner_window_s: int = Field(default=60, ge=0, le=3600)


class ScheduleSettings(_Section):
    # When `digest serve` wakes to send the digests that have come due (each subscriber has a local hour).
    cron: str = "*/15 * * * *"
    timezone: str = "UTC"  # the cron's timezone, and each subscriber's default timezone
    delivery_hour: int = Field(default=6, ge=0, le=23)  # subscribers' default local hour for the digest
    # A wake fetches the sources only when the last fetch is at least this old (feeds change a few times a day).
    ingest_every_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # A service that was down: yesterday's digest is still sent this many hours after it was due; the
    # scheduler's misfire grace time too.
    catch_up_hours: int = Field(default=6, ge=0, le=23)
    # One scheduler per database: the lease it holds expires this long after its last heartbeat.
    lease_seconds: int = Field(default=120, ge=10, le=3600)

    @field_validator("timezone")
    @classmethod
    def _valid_tz(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone: {v!r}") from None
        return v

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, v: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(v)
        except ValueError as exc:
            raise ValueError(f"invalid cron expression {v!r}: {exc}") from None
        return v


class DispatchSettings(_Section):
    # local: this process runs the day; celery: shards of subscribers go to `digest worker` processes.
    mode: Literal["local", "celery"] = "local"
    broker_url: str = "redis://127.0.0.1:6379/0"  # Redis or RabbitMQ (amqp://)
    _port = field_validator("broker_url")(_numeric_port)
    shard_size: int = Field(default=500, ge=1, le=100_000)  # subscribers per task
    # A task not acknowledged this long after a worker took it goes back to the queue (Redis broker):
    # longer than a shard takes, short enough that a dead worker's shard is soon finished by another.
    visibility_timeout_s: int = Field(default=3600, ge=1, le=86_400)
    shard_timeout_s: int = Field(default=3600, ge=1, le=86_400)  # the dispatcher waits this long for all shards
    # Ranking a large day (more than 2,000 subscribers) in this many forked processes: the cores of
    # one machine; 1 ranks in the running process. Each process holds the day's papers (about 100 MB
    # at 2,000 papers) plus one group's models.
    rank_processes: int = Field(default=1, ge=1, le=64)


class ModelSettings(_Section):
    # A sentence-transformers model name or local path (the embed extra), or "none": tf-idf only.
    encoder: str = Field(default="all-MiniLM-L6-v2", min_length=1, max_length=500)


def _default_sources() -> list[SourceSettings]:
    return [SourceSettings(name="sample-arxiv-cs", path="builtin:arxiv-cs-2024-11-28.xml", kind="arxiv_rss")]


class Settings(BaseSettings):
    """Values given in code > the DIGEST_ environment > the YAML file (load_settings) > the defaults."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter=_ENV_DELIMITER,
                                      extra="forbid", frozen=True, case_sensitive=False)

    state_dir: str = "state"
    database: DatabaseSettings = DatabaseSettings()
    sources: list[SourceSettings] = Field(default_factory=_default_sources)
    digest: DigestSettings = DigestSettings()
    delivery: DeliverySettings = DeliverySettings()
    smtp: SmtpSettings = SmtpSettings()
    fetch: FetchSettings = FetchSettings()
    webhooks: WebhookSettings = WebhookSettings()
    web: WebSettings = WebSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    dispatch: DispatchSettings = DispatchSettings()
    model: ModelSettings = ModelSettings()

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # No .env file and no secrets directory: a deployment sets variables or writes the YAML file.
        return init_settings, env_settings, InitSettingsSource(settings_cls, dict(_file_values.get() or {}))

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, v: list[SourceSettings]) -> list[SourceSettings]:
        names = [s.name for s in v]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate source name: {sorted(dup)[0]}")
        return v

    # Derived paths, resolved against the working directory.
    @property
    def state_path(self) -> Path:
        return Path(self.state_dir).expanduser()

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.state_path / 'digest.db').as_posix()}"

    @property
    def outbox_path(self) -> Path:
        return Path(self.delivery.outbox_dir).expanduser() if self.delivery.outbox_dir else self.state_path / "outbox"


def _variable_for(loc: tuple[int | str, ...], environ: Mapping[str, str]) -> str | None:
    """The DIGEST_ variable that set the value at loc (itself or a section above it), if one did."""
    names = {name.upper() for name in environ}
    for depth in range(len(loc), 0, -1):
        name = ENV_PREFIX + _ENV_DELIMITER.join(str(p) for p in loc[:depth]).upper()
        if name in names:
            return name
    return None


def _describe(exc: ValidationError, origin: str) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    variable = _variable_for(tuple(err["loc"]), os.environ)
    if variable is not None:
        origin = f"{origin} + {variable}"
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    else:
        msg = err["msg"].removeprefix("Value error, ")
        if "input" in err and err["type"] not in {"missing"} and not isinstance(err["input"], dict | list):
            value = err["input"]
            # A URL's password never reaches the message (a database or broker URL may carry one).
            shown = "***" if "password" in key or "secret" in key else repr(
                masked_url(value) if isinstance(value, str) else value)
            if shown not in msg:
                msg = f"{msg} (got {shown})"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"config error in {origin}: {key}: {msg}{more}"


def _read_file(p: Path) -> dict[str, Any]:
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config error: file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config error: cannot read {p}: {exc}") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config error: {p}{where}: not valid YAML") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config error: {p}: the top level must be a mapping of keys")
    odd = [k for k in loaded if not isinstance(k, str)]
    if odd:
        raise ConfigError(f"config error in {p}: {odd[0]!r}: unknown key (keys are names)")
    return loaded


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read the settings once: the file at path (None: DIGEST_CONFIG, else the embedded defaults),
    then the DIGEST_ environment over it."""
    if path is None and os.environ.get("DIGEST_CONFIG"):
        path = os.environ["DIGEST_CONFIG"]
    data = _read_file(Path(path)) if path is not None else {}
    origin = str(path) if path is not None else "embedded defaults"
    token = _file_values.set(data)
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None
    except SettingsError as exc:  # a section or the source list given as a variable that is not JSON
        variable = re.search(r'field "([^"]+)"', str(exc))
        named = f"{ENV_PREFIX}{variable.group(1).upper()}" if variable else "a DIGEST_ variable"
        raise ConfigError(f"config error: {named}: not valid JSON for a section or list") from None
    finally:
        _file_values.reset(token)


def masked_url(url: str) -> str:
    """A database, broker or feed URL with its password replaced, safe to print."""
    # Up to the last @ of the authority: a password may itself hold an @ (http://u:p@ss@host/).
    url = re.sub(r"(://[^:/@?#]*:)[^/?#]*@", r"\1***@", url)  # redis://:secret@host has no user
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url, flags=re.IGNORECASE)
