"""The reader's library: references read from arXiv ids or a BibTeX file, imported as stars (warm start)."""
