"""The consent wording shown next to the subscribe button, stored with each confirmed sign-up.

Change the text and the version together: a consent record names the version and keeps the text
and its SHA-256, so what a subscriber agreed to can always be shown.
"""

from __future__ import annotations

import hashlib

CONSENT_VERSION = "2026-11-29"
CONSENT_TEXT = (
    "I want to receive the paper digest by email at this address. It is ranked from my interests and "
    "from what I star, open or mark as less interesting in it, and those clicks are stored for that. "
    "I can change, pause, export or delete my data, or unsubscribe, at any time from the links in "
    "every digest."
)
CONSENT_SHA256 = hashlib.sha256(CONSENT_TEXT.encode("utf-8")).hexdigest()
