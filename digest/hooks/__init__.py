"""Chat channels: a digest posted to a Slack, Discord or Matrix room, or to any JSON webhook.

masking.py (secrets never shown), spec.py (checked when added), formats.py (the message for each
kind), post.py (the HTTP request, through the feeds' safe transport). The ledger rows, retries and
pausing live with the email's: digest.pipeline.chat, digest.store.channels.
"""
