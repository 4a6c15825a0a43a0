"""Writes docs/gist-review.md: the one-line gist (digest.gist) chosen for 50 real abstracts of the
feed samples, beside our verdict on each: does the chosen sentence state what the paper does?

    python docs/gist_review.py            # rewrite the table from the samples and VERDICTS
    python docs/gist_review.py --check    # exit 1 if the table no longer matches what the code picks

The abstracts: every 40th paper of the 2024-11-28 arXiv listing (tests/fixtures/feeds) and every
7th of the arXiv API sample, 50 in all. VERDICTS holds our reading of each choice, made once by
reading the abstract and the sentence; a changed choice needs a new reading (--check says which).
"""

from __future__ import annotations

import sys
from pathlib import Path

from digest.gist import gist
from digest.ingest.sources import parse_feed

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = [
    ("arxiv_rss_new2024_multi-archive_2024-11-28.xml", 40, 36),
    ("arxiv_api_atom_2026_search-testing_100results.xml", 7, 14),
]
OUT = ROOT / "docs" / "gist-review.md"

# paper id -> (our verdict, a short note where it is "no"): "yes" when the sentence says what the
# paper itself does (its method, result or claim), "no" when it is background or a detail.
VERDICTS: dict[str, tuple[str, str]] = {
    "2411.17700": ("yes", ""),
    "2411.17740": ("yes", ""),
    "2411.17780": ("yes", ""),
    "2411.17820": ("yes", ""),
    "2411.17860": ("yes", ""),
    "2411.17900": ("yes", ""),
    "2411.17940": ("yes", ""),
    "2411.17980": ("yes", ""),
    "2411.18020": ("yes", ""),
    "2411.18060": ("yes", ""),
    "2411.18100": ("yes", ""),
    "2411.18140": ("yes", ""),
    "2411.18180": ("yes", ""),
    "2411.18220": ("yes", ""),
    "2411.18260": ("yes", ""),
    "2411.18300": ("yes", "what is studied"),
    "2411.18340": ("yes", ""),
    "2411.18380": ("yes", ""),
    "2411.18420": ("yes", ""),
    "2411.18460": ("yes", "a main finding"),
    "2411.18500": ("no", "background: a survey whose abstract never says what it does"),
    "2411.18540": ("yes", ""),
    "2411.18580": ("yes", ""),
    "2411.18620": ("yes", ""),
    "2207.11981": ("yes", ""),
    "2307.07439": ("yes", ""),
    "2312.04398": ("yes", ""),
    "2403.07266": ("yes", ""),
    "2405.04230": ("yes", ""),
    "2406.03877": ("yes", ""),
    "2407.04127": ("no", "a detail of the method, not what the paper does"),
    "2408.06413": ("yes", ""),
    "2409.07437": ("yes", ""),
    "2410.06871": ("yes", ""),
    "2410.20100": ("yes", ""),
    "2411.07976": ("yes", ""),
    "2202.12139": ("yes", ""),
    "1205.1866": ("yes", ""),
    "1912.04900": ("yes", ""),
    "2005.06826": ("yes", ""),
    "2007.10224": ("yes", ""),
    "2312.06056": ("yes", ""),
    "2505.05162": ("yes", ""),
    "2107.07364": ("yes", ""),
    "2009.01554": ("yes", ""),
    "2507.16734": ("no", "the setting studied; the result, a lower bound, comes later"),
    "2302.13198": ("yes", ""),
    "1408.2674": ("yes", ""),
    "1912.05434": ("yes", ""),
    "2408.07846": ("yes", ""),
}


def chosen() -> list[tuple[str, str, str]]:
    rows = []
    for name, step, count in SAMPLES:
        path = ROOT / "tests" / "fixtures" / "feeds" / name
        feed = parse_feed(path.read_bytes(), source_name=name)
        papers = [p for p in feed.papers if p.abstract.strip()]
        for p in papers[::step][:count]:
            rows.append((name, p.arxiv_id or p.canonical_id, gist(p.abstract)))
    return rows


def table(rows: list[tuple[str, str, str]]) -> str:
    yes = sum(1 for _, pid, _ in rows if VERDICTS.get(pid, ("?", ""))[0] == "yes")
    lines = [
        "# The one-line gist on 50 real abstracts",
        "",
        f"Made by `python docs/gist_review.py` (see its docstring). **States the contribution: {yes} of "
        f"{len(rows)}.**",
        "",
        "| # | sample | paper | chosen sentence | states the contribution? |",
        "|---|---|---|---|---|",
    ]
    for i, (name, pid, sentence) in enumerate(rows, 1):
        verdict, note = VERDICTS.get(pid, ("?", "not read yet"))
        cell = sentence.replace("|", "\\|")
        lines.append(f"| {i} | {name.split('_')[0]} {name.split('_')[1]} | {pid} | {cell} | {verdict}"
                     + (f" ({note})" if note else "") + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    text = table(chosen())
    if "--check" in sys.argv:
        if OUT.read_text(encoding="utf-8") != text:
            print("docs/gist-review.md is out of date: run python docs/gist_review.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
