"""digest: a personalised daily paper digest."""

from importlib.metadata import PackageNotFoundError, version

try:  # one version source: pyproject.toml, through the installed distribution's metadata
    __version__ = version("daily-paper-digest")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
