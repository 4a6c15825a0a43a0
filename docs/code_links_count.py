"""How many papers of the feed samples get a "Code" or "Data" button (digest.code_links), per sample.

    python docs/code_links_count.py

Reads every feed sample under tests/fixtures/feeds (the real ones of /work/shared/data/feeds and the
bundled listing) with the project's parser, as ingest does, and prints a Markdown table.
"""

from __future__ import annotations

from pathlib import Path

from digest.code_links import paper_links
from digest.errors import FeedError
from digest.ingest.sources import parse_feed

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "tests" / "fixtures" / "feeds").glob("*.xml")) + [
    ROOT / "digest" / "samples" / "arxiv-cs-2024-11-28.xml"]


def main() -> None:
    print("| sample | papers | Code | Data | either |")
    print("|---|---|---|---|---|")
    totals = [0, 0, 0, 0]
    for path in SAMPLES:
        try:
            papers = parse_feed(path.read_bytes(), source_name=path.name).papers
        except FeedError:
            continue  # the malformed and error samples
        if not papers:
            continue
        found = [paper_links(p.abstract, p.comment or "") for p in papers]
        row = [len(papers), sum(1 for f in found if f.code), sum(1 for f in found if f.data),
               sum(1 for f in found if f.code or f.data)]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        print(f"| {path.name} | " + " | ".join(map(str, row)) + " |")
    print("| **all** | " + " | ".join(f"**{n}**" for n in totals) + " |")


if __name__ == "__main__":
    main()
