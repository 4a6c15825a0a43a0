"""digest: a personalised daily paper digest."""

from typing import Any


def __getattr__(name: str) -> Any:
    # Read on demand: the metadata lookup costs ~35 ms, which every command would pay at start-up.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:  # one version source: pyproject.toml, through the installed distribution's metadata
            return version("daily-paper-digest")
        except PackageNotFoundError:  # run from a source tree that was never installed
            return "0+unknown"
    raise AttributeError(f"module 'digest' has no attribute {name!r}")
