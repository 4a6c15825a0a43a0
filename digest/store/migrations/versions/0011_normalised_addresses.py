"""Stored addresses in the normalised form of digest.addresses, looked up ignoring case; sign-ups
counted per mailbox.

Every address in subscribers and signups is rewritten to its normalised form (the local part as
typed, the domain lowercased and IDNA-encoded). Nothing is merged: subscribers that would become the
same address (ignoring case) are left exactly as they were, and so is an address the rule refuses
(a comment, a control character, a domain without a dot...); both are listed in a warning for the
operator. signups gains the mailbox the per-address limit counts (no case, no +tag).

The rule is imported from digest.addresses, so the rows get the form the code compares them in.

Revision ID: 0011
Revises: 0009
"""

from __future__ import annotations

import logging
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

from digest.addresses import AddressError, address_key, mailbox_key, normalise_address

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

log = logging.getLogger("digest.store.migrations")


def _normalised(stored: str) -> str | None:
    try:
        return normalise_address(stored)
    except AddressError:
        return None


def _subscribers(conn: sa.Connection) -> None:
    rows = conn.execute(sa.text("SELECT id, email FROM subscribers ORDER BY id")).all()
    # Every row's address as the code now sees it: the normalised form, or as stored when refused.
    target = {r.id: _normalised(r.email) for r in rows}
    refused = [r for r in rows if target[r.id] is None]
    groups: dict[str, list[sa.Row[tuple[int, str]]]] = defaultdict(list)
    for r in rows:
        groups[address_key(target[r.id] or r.email)].append(r)
    collisions = [g for g in groups.values() if len(g) > 1]
    left_alone = {r.id for g in collisions for r in g}
    for r in rows:
        new = target[r.id]
        if new is not None and new != r.email and r.id not in left_alone:
            conn.execute(sa.text("UPDATE subscribers SET email = :e WHERE id = :i"), {"e": new, "i": r.id})
    if collisions:
        listed = "; ".join(" and ".join(f"{r.email!r} (subscriber {r.id})" for r in g) for g in collisions)
        log.warning("addresses that are the same mailbox once normalised, left as they were (not merged): %s. "
                    "Keep one of each (digest unsubscribe, or the manage page's delete).", listed)
    if refused:
        listed = "; ".join(f"{r.email!r} (subscriber {r.id})" for r in refused)
        log.warning("stored addresses that are not valid, left as they were (their digests fail until "
                    "corrected): %s", listed)


def _signups(conn: sa.Connection) -> None:
    for r in conn.execute(sa.text("SELECT id, email FROM signups ORDER BY id")).all():
        new = _normalised(r.email) or r.email  # a pending sign-up is never merged with another: no collision
        conn.execute(sa.text("UPDATE signups SET email = :e, mailbox = :m WHERE id = :i"),
                     {"e": new, "m": mailbox_key(new), "i": r.id})


def upgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("signups") as batch:
        batch.add_column(sa.Column("mailbox", sa.String(254), nullable=True))
    _subscribers(conn)
    _signups(conn)
    with op.batch_alter_table("signups") as batch:
        batch.alter_column("mailbox", existing_type=sa.String(254), nullable=False)
        batch.create_index("ix_signups_mailbox", ["mailbox"])
    op.create_index("ix_subscribers_email_lower", "subscribers", [sa.text("lower(email)")])


def downgrade() -> None:
    # The addresses stay normalised: how they were typed before is not kept.
    op.drop_index("ix_subscribers_email_lower", table_name="subscribers")
    with op.batch_alter_table("signups") as batch:
        batch.drop_index("ix_signups_mailbox")
        batch.drop_column("mailbox")
