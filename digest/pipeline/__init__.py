"""The day's digests for one date: plan, rank, render, send (digests.py), and the send loop (send.py).

Kept empty on purpose: importing a submodule must not pay for the others (numpy, the mail stack).
"""
