"""digest: a personalised daily paper digest."""

__version__ = "0.1.0"
