"""Building the working objects from the settings. Only the CLI and the service call this."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from digest.config import Settings
from digest.errors import ConfigError
from digest.secret_key import stored_key
from digest.store.engine import open_engine

# The working objects are imported where they are built: `digest subscribe` and `digest status` open
# an App too, and must not pay for numpy, scikit-learn, Jinja2 and the mail stack (README: start-up).
if TYPE_CHECKING:
    from digest.mail.confirm import ConfirmationMailer
    from digest.mail.render import DigestRenderer
    from digest.mail.transport import Transport
    from digest.pipeline.chat import ChatOptions
    from digest.pipeline.digests import DigestPipeline
    from digest.pipeline.send import DeliveryPolicy
    from digest.rank.encoder import TextEncoder
    from digest.signing.links import LinkBuilder


def secret_keys(settings: Settings) -> list[str]:
    """The configured keys (comma-separated for rotation), or one generated and kept in state_dir."""
    if settings.web.secret_key is not None:
        keys = [k.strip() for k in settings.web.secret_key.get_secret_value().split(",") if k.strip()]
        if not keys or any(len(k) < 16 for k in keys):
            raise ConfigError("config error: web.secret_key: each key must be at least 16 characters")
        return keys
    path = settings.state_path / "secret_key"
    try:
        return [stored_key(path)]
    except OSError as exc:
        raise ConfigError(f"config error: state_dir: cannot keep the secret key in {path}: {exc}") from None


def load_encoder(settings: Settings) -> tuple[TextEncoder | None, str | None]:
    """The configured encoder (None for "none"), and a one-line notice when the one asked for cannot
    be used (the bundled static vectors stand in). Without the embed extra the default is the static
    vectors, quietly."""
    from digest.rank import encoder

    name = settings.model.encoder
    asked = "encoder" in settings.model.model_fields_set and name.strip().lower() != encoder.NONE
    if not asked and name == encoder.DEFAULT_ENCODER:
        return encoder.load_default()
    return encoder.load_or_notice(name)


@dataclass
class App:
    settings: Settings
    engine: Engine
    encoder_notice: str | None = None
    _encoder: TextEncoder | None = None
    _encoder_loaded: bool = False

    @classmethod
    def open(cls, settings: Settings) -> App:
        return cls(settings, open_engine(settings.database_url))

    def close(self) -> None:
        self.engine.dispose()

    def links(self) -> LinkBuilder:
        from digest.signing.links import LinkBuilder
        from digest.signing.tokens import LinkSigner

        web = self.settings.web
        from digest.store.link_keys import StoredLinkKeys

        return LinkBuilder(web.base_url, LinkSigner(secret_keys(self.settings)), manage_days=web.manage_link_days,
                           key_of=StoredLinkKeys(self.engine, whole_table=True))

    def renderer(self) -> DigestRenderer:
        from digest.mail.render import DigestRenderer

        d = self.settings.digest
        return DigestRenderer(templates_dir=d.templates_dir, abstract_chars=d.abstract_chars)

    def transport(self, *, force_outbox: bool = False) -> Transport:
        from digest.mail.transport import make_transport

        s = self.settings
        delivery = s.delivery.model_copy(update={"method": "outbox"}) if force_outbox else s.delivery
        return make_transport(delivery, s.smtp, s.outbox_path)

    def confirmation_mailer(self) -> ConfirmationMailer:
        """Sends sign-up confirmations through the configured transport; the outbox keeps them apart."""
        from digest.mail.confirm import ConfirmationMailer
        from digest.mail.transport import make_transport

        s = self.settings
        return ConfirmationMailer(lambda: make_transport(s.delivery, s.smtp, s.outbox_path / "confirmations"),
                                  from_addr=s.delivery.from_addr, from_name=s.delivery.from_name,
                                  templates_dir=s.digest.templates_dir)

    def encoder(self) -> TextEncoder | None:
        """Loaded once per App, on first use; a failure leaves encoder_notice for the CLI to show."""
        if not self._encoder_loaded:
            self._encoder, self.encoder_notice = load_encoder(self.settings)
            self._encoder_loaded = True
        return self._encoder

    def pipeline(self, *, force_outbox: bool = False) -> DigestPipeline:
        from digest.pipeline.digests import DigestOptions, DigestPipeline

        d = self.settings.digest
        return DigestPipeline(
            self.engine,
            renderer=self.renderer(),
            links=self.links(),
            transport_factory=lambda: self.transport(force_outbox=force_outbox),
            options=DigestOptions(
                top_k=d.top_k,
                min_score=d.min_score,
                quiet_day=d.quiet_day,
                lookback_days=d.lookback_days,
                include_replacements=d.include_replacements,
                diversity=d.diversity,
                popularity_weight=d.popularity_weight,
                trending_k=d.trending_k,
                explore=d.explore,
            ),
            from_addr=self.settings.delivery.from_addr,
            from_name=self.settings.delivery.from_name,
            policy=self.delivery_policy(force_outbox=force_outbox),
            encoder=self.encoder(),
            rank_processes=self.settings.dispatch.rank_processes,
            chat=self.chat_options(),
        )

    def chat_options(self) -> ChatOptions:
        from digest.pipeline.chat import ChatOptions

        hooks = self.settings.webhooks
        return ChatOptions(self.settings.fetch, timeout_s=hooks.timeout_s, pause_after=hooks.pause_after_failures)

    def delivery_policy(self, *, force_outbox: bool = False) -> DeliveryPolicy:
        from digest.pipeline.send import DeliveryPolicy

        d, smtp = self.settings.delivery, self.settings.smtp
        uses_smtp = d.method == "smtp" and not force_outbox
        return DeliveryPolicy(
            retry_backoff_s=d.retry_backoff_s,
            retry_backoff_max_s=d.retry_backoff_max_s,
            retry_for=timedelta(hours=d.retry_for_h),
            max_hard_bounces=d.max_hard_bounces,
            rate_per_s=smtp.rate_per_s if uses_smtp else 0.0,
            max_consecutive_errors=smtp.max_consecutive_errors,
        )

    @property
    def previews_path(self) -> Path:
        return self.settings.state_path / "previews"

