"""Signed links: the token format (tokens.py) and the URLs placed in a digest (links.py).

Below both mail and web: the mail signs the links, the web app verifies them.
"""
