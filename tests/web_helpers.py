"""Helpers for driving the web app's forms in tests: the CSRF token of a page."""

from __future__ import annotations

import re
from typing import Any


def csrf_of(response: Any) -> dict[str, str]:
    """The hidden CSRF field of the first form on a page, as form data to post back."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    assert found is not None, f"no CSRF field on the page ({response.status_code})"
    return {"csrf_token": found.group(1)}
