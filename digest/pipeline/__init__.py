"""The day's digests for one date, in the order a run takes them: collect.py (fetch, parse, store),
plan.py (rank in groups; compact.py for plans made in forked processes), digests.py (the run: record,
then send), triage.py (rows a run finds already there), messages.py (render and compose), send.py
(the send loop, one ledger row at a time), report.py (what a run did, recorded).

Kept empty on purpose: importing a submodule must not pay for the others (numpy, the mail stack).
"""
