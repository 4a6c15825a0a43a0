"""The one address rule (digest.addresses): what it refuses and why, the normalised form, the keys."""

from __future__ import annotations

import pytest

from digest.addresses import AddressError, address_key, is_valid_address, mailbox_key, normalise_address
from tests.address_cases import BAD_ADDRESSES


@pytest.mark.parametrize(("raw", "reason"), [(raw, reason) for _, raw, reason in BAD_ADDRESSES],
                         ids=[name for name, _, _ in BAD_ADDRESSES])
def test_addresses_the_mailer_cannot_use_are_refused_with_the_reason(raw: str, reason: str) -> None:
    with pytest.raises(AddressError) as err:
        normalise_address(raw)
    assert reason.lower() in str(err.value).lower()
    assert not is_valid_address(raw)


@pytest.mark.parametrize(("raw", "stored"), [
    ("ada@example.org", "ada@example.org"),
    ("Ada.Lovelace@Example.ORG", "Ada.Lovelace@example.org"),  # the local part as typed, the domain lowercased
    ("  ada@example.org\n", "ada@example.org"),  # what a form or a shell leaves around it
    ("ada@b\u00fccher.example", "ada@xn--bcher-kva.example"),  # IDNA for sending
    ("ada@B\u00dcCHER.de", "ada@xn--bcher-kva.de"),
    ("ada@xn--bcher-kva.de", "ada@xn--bcher-kva.de"),
    ("ada@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444", "ada@xn--e1afmkfd.xn--p1ai"),  # one script a label
    ("victim+tag@example.org", "victim+tag@example.org"),  # the +tag is kept for sending
    ("a!#$%&'*+/=?^_`{|}~-@x-y.org", "a!#$%&'*+/=?^_`{|}~-@x-y.org"),
])
def test_the_normalised_form(raw: str, stored: str) -> None:
    assert normalise_address(raw) == stored
    assert normalise_address(stored) == stored  # normalising twice changes nothing


def test_the_sender_may_be_on_this_host() -> None:
    assert normalise_address("digest@localhost", own_host=True) == "digest@localhost"
    for bad in ("digest@localhost", "a(b)@localhost", "@localhost"):
        with pytest.raises(AddressError):
            normalise_address(bad, own_host=bad != "digest@localhost")


def test_keys() -> None:
    assert address_key("Ada@lab.org") == address_key("ada@lab.org") == address_key("ADA@lab.org")
    assert address_key("ada+x@lab.org") != address_key("ada@lab.org")  # another address...
    one = {mailbox_key(normalise_address(a)) for a in
           ("victim@example.org", "Victim@Example.org", "victim+1@example.org", "VICTIM+x+y@EXAMPLE.ORG")}
    assert one == {"victim@example.org"}  # ... but the same mailbox
    assert mailbox_key("+tag@example.org") == "+tag@example.org"  # nothing before the +: kept whole
