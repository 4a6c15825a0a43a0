"""The import picture: every module of digest imports only from its own layer or the layers below,
the middle layer's packages never import each other, and no two packages import each other.

Imports are read from the source (ast), those inside functions and under TYPE_CHECKING included:
a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "digest"

# Bottom up. A module belongs to the first unit (package or module, by dotted prefix) that names it.
LAYERS: list[list[str]] = [
    ["digest.domain", "digest.errors", "digest.text", "digest.identity", "digest.process", "digest.addresses",
     "digest.secret_key", "digest.__init__", "digest.hooks.masking", "digest.gist", "digest.code_links",
     "digest.author_names"],
    ["digest.config"],
    ["digest.store", "digest.rank", "digest.ingest", "digest.mail", "digest.signing"],
    # Data migrations convert stored text with the code of their day (0012: digest.ingest.latex).
    # Chat channels: checking and posting a webhook use the feeds' guarded transport and the mail's
    # subject; hiding their secrets is pure text, used by the store too.
    ["digest.pipeline", "digest.training", "digest.library", "digest.subscribe_input", "digest.wiring",
     "digest.store.migrations", "digest.hooks"],
    ["digest.dispatch", "digest.daily", "digest.service", "digest.web", "digest.evaluate"],
    ["digest.cli", "digest.__main__"],
]
SIBLINGS = LAYERS[2]  # never import each other (they meet in digest.domain)


def _unit(module: str) -> str:
    """The most specific unit named in LAYERS that holds module."""
    best = ""
    for layer in LAYERS:
        for unit in layer:
            if (module == unit or module.startswith(unit + ".")) and len(unit) > len(best):
                best = unit
    assert best, f"{module} is in no layer: add it to LAYERS"
    return best


def _layer(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)  # `from digest.store import papers`
    return {m for m in found if m == "digest" or m.startswith("digest.")}


def _edges() -> dict[str, set[str]]:
    """unit -> the units it imports (itself left out)."""
    known = {".".join(p.relative_to(ROOT.parent).with_suffix("").parts) for p in ROOT.rglob("*.py")}
    known |= {m.removesuffix(".__init__") for m in known}
    edges: dict[str, set[str]] = defaultdict(set)
    for path in sorted(ROOT.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        source = _unit(module)
        for target in _imports(path, module.removesuffix(".__init__")):
            if target not in known or target == "digest":
                continue  # a name imported from a module (from digest.x import y), or the package itself
            unit = _unit(target)
            if unit != source:
                edges[source].add(unit)
    return edges


def test_every_import_points_down_or_across_its_own_layer() -> None:
    wrong = sorted(f"{src} -> {dst}" for src, dsts in _edges().items() for dst in dsts if _layer(dst) > _layer(src))
    assert wrong == [], "imports that run back up:\n" + "\n".join(wrong)


def test_the_middle_packages_do_not_import_each_other() -> None:
    edges = _edges()
    wrong = sorted(f"{a} -> {b}" for a in SIBLINGS for b in edges.get(a, ()) if b in SIBLINGS)
    assert wrong == [], "\n".join(wrong)


def test_no_two_packages_import_each_other() -> None:
    edges = _edges()
    pairs = sorted({tuple(sorted((a, b))) for a, dsts in edges.items() for b in dsts if a in edges.get(b, ())})
    assert pairs == [], pairs
