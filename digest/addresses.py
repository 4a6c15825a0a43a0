"""Email addresses: the one rule for every address the CLI, the web forms and the config take in,
and the keys addresses are compared and counted by.

The rule is the maintained email-validator's syntax check (no DNS: deliverability checks off), made
as strict as the mailer: an ASCII local part (no SMTPUTF8), no quoted local part, no comments, no
display name, no IP literal, a domain with a dot outside the special-use names. On top of it, what
the validator lets through but a mail program could misread or a reader could be fooled by: an
RFC 2047 encoded word ("=?...?=") in the local part, and a domain label that mixes Latin, Cyrillic
or Greek letters (look-alikes such as "exаmple.org" with a Cyrillic "а").

The normalised form is the validator's: the local part as typed, the domain lowercased and
IDNA-encoded (what goes on the wire). Two addresses are the same subscriber when they are equal
ignoring case (:func:`address_key`); one mailbox, for counting sign-ups, also ignores a "+tag"
(:func:`mailbox_key`), which is never stripped from the address mail is sent to.
"""

from __future__ import annotations

import re
import unicodedata

# Scripts whose letters pass for one another ("а" and "a", "ο" and "o"): a label may use one of them.
_CONFUSABLE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")
# RFC 2047's "=?charset?encoding?text?=", which header parsers decode (any "=?" ... "?=" is refused).
_ENCODED_WORD = re.compile(r"=\?.*\?=")
# What may stand around an address typed in a form or a shell, and is dropped.
_SURROUNDING = " \t\r\n"
# The sender may be on this host's own name (the default digest@localhost, a relay on this machine).
_OWN_HOST = "localhost"


class AddressError(ValueError):
    """Not an address we accept; the message says why, without repeating the address."""


def normalise_address(raw: str, *, own_host: bool = False) -> str:
    """The address as stored and mailed, or AddressError with the reason.

    own_host: also accept the domain "localhost" (only for the sender, digest's own address)."""
    typed = raw.strip(_SURROUNDING)
    local, at, domain = typed.rpartition("@")
    if own_host and at and domain.lower() == _OWN_HOST:
        # The validator refuses special-use names; the local part still goes through the same rule.
        return f"{normalise_address(local + '@example.org').rpartition('@')[0]}@{_OWN_HOST}"
    # Imported here: its rule tables take ~30 ms to build, which commands that check no address skip.
    from email_validator import EmailNotValidError, validate_email

    try:
        valid = validate_email(typed, check_deliverability=False, allow_smtputf8=False, allow_quoted_local=False,
                               allow_display_name=False, allow_domain_literal=False, allow_empty_local=False,
                               globally_deliverable=True)
    except EmailNotValidError as exc:
        raise AddressError(_reason(str(exc))) from None
    if valid.ascii_email is None:  # not reached with SMTPUTF8 off; the type allows it
        raise AddressError("it needs SMTPUTF8, which is not supported")
    local_part = valid.ascii_email.rpartition("@")[0]
    if _ENCODED_WORD.search(local_part):
        raise AddressError('"=?...?=" before the @-sign would be read as an encoded word by mail programs')
    for label in valid.domain.split("."):
        scripts = sorted({s for s in map(_script, label) if s in _CONFUSABLE_SCRIPTS})
        if len(scripts) > 1:
            raise AddressError(f"the domain label {label!r} mixes {' and '.join(s.title() for s in scripts)} "
                               "letters (look-alike characters)")
    return valid.ascii_email


def is_valid_address(raw: str) -> bool:
    try:
        normalise_address(raw)
    except AddressError:
        return False
    return True


def address_key(address: str) -> str:
    """What two addresses are compared by: the same subscriber whatever the case typed."""
    return address.lower()


def mailbox_key(address: str) -> str:
    """One mailbox for counting (sign-up limits): case ignored and a "+tag" dropped, so victim+1@x.org,
    Victim+2@x.org and victim@x.org count as one. Only for counting: mail goes to the address as is."""
    local, _, domain = address_key(address).rpartition("@")
    base = local.split("+", 1)[0]
    return f"{base or local}@{domain}"


def _script(ch: str) -> str:
    """The script a letter belongs to, by its Unicode name's first word ("" for anything else)."""
    if not ch.isalpha():
        return ""
    return unicodedata.name(ch, "").split(" ", 1)[0]


def _reason(message: str) -> str:
    """The validator's message as a clause: "the email address contains ..." (no capital, no full stop)."""
    text = message.strip().rstrip(".")
    return text[:1].lower() + text[1:]
