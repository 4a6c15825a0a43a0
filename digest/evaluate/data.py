"""Loaders for replay data: the CiteULike-a directory, or an operator's papers.jsonl + interactions.csv.

Both give an EvalData: the corpus, each user's liked papers, and tags (per paper for CiteULike-a,
where item-tag.dat pools all users' tags; per user and paper for interactions.csv). Every problem in
an input file raises InputError naming the file and, where there is one, the line.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from digest.errors import InputError
from digest.evaluate.protocol import EvalCorpus

log = logging.getLogger(__name__)

# The repository sits next to ../shared; installed elsewhere this does not exist and --citeulike is needed.
DEFAULT_CITEULIKE = Path(__file__).resolve().parents[3] / "shared" / "data" / "citeulike-a"

LIKE_KINDS = frozenset({"like", "save", "star", "click"})
# Accepted (an export may hold them) but not likes, so the protocol ignores them.
OTHER_KINDS = frozenset({"view", "shown", "dislike", "hide"})
INTERACTION_COLUMNS = ("user", "paper_id", "time", "kind", "tag")

# Tags about a paper's status in someone's library or its genre, not its topic: a keyword alert on
# "review" or "toread" matches nothing the user means.
NOISE_TAGS = frozenset({
    "no tag", "notag", "untagged", "imported", "import", "bibtex import", "read", "to read", "reading",
    "read later", "article", "articles", "paper", "papers", "journal", "misc", "reference", "references",
    "journal club", "jc", "my papers", "own", "i own it", "mine", "bib", "pdf", "phd", "thesis", "dissertation",
    "diplomarbeit", "master", "interesting", "interest", "general", "other", "others", "new", "next", "find",
    "review", "reviews", "survey", "overview", "tutorial", "introduction", "book", "books", "textbook", "classic",
})
# Any of these words marks a bookkeeping tag: "file-import-09-04-28", "thesis_ref", "mdb-thesis".
NOISE_WORDS = frozenset({
    "import", "imported", "bibtex", "toread", "todo", "unread", "readlater", "thesis", "phdthesis", "disseration",
    "citeulike", "fromciteulike", "findpdf", "printed", "journalclub", "staffpaper", "iown", "reflist", "mypapers",
})
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_DATE_TAG = re.compile(rf"^\d+ ({_MONTHS}) \d+$")


@dataclass(frozen=True)
class EvalData:
    corpus: EvalCorpus
    likes: Mapping[str, tuple[int, ...]]  # user -> liked paper indices, no duplicates, in input order
    item_tags: Sequence[tuple[str, ...]] = ()  # per paper, shared by all users (empty: none)
    user_tags: Mapping[str, Mapping[int, tuple[str, ...]]] = field(default_factory=dict)
    source: str = ""

    def tags_of(self, user: str, paper: int) -> tuple[str, ...]:
        own = self.user_tags.get(user, {}).get(paper)
        if own is not None:
            return own
        return self.item_tags[paper] if self.item_tags else ()


def normalise_tag(raw: str) -> str:
    """'Gene_Expression' and 'gene-expression' both become 'gene expression', as a subscriber would type."""
    return re.sub(r"\s+", " ", re.sub(r"[_\-]+", " ", raw.lower())).strip()


def is_topical(tag: str) -> bool:
    """False for bookkeeping tags, years, dates and tags with no searchable word."""
    words = tag.split()
    if not words or tag in NOISE_TAGS or any(w in NOISE_WORDS for w in words):
        return False
    if tag.isdigit() or _DATE_TAG.match(tag):
        return False
    return any(len(w) > 1 and w not in ENGLISH_STOP_WORDS for w in words)


def user_keywords(data: EvalData, user: str, history: Sequence[int], n: int = 5,
                  popularity: Mapping[str, int] | None = None) -> tuple[str, ...]:
    """The user's n most frequent topical tags over their history papers.

    Ties go to the tag more papers carry overall (popularity), then alphabetically, so the choice
    does not depend on dict order.
    """
    counts: Counter[str] = Counter()
    for p in history:
        counts.update(t for t in set(data.tags_of(user, p)) if is_topical(t))
    pop = popularity or {}
    ranked = sorted(counts, key=lambda t: (-counts[t], -pop.get(t, 0), t))
    return tuple(ranked[:n])


def tag_popularity(data: EvalData) -> Counter[str]:
    pop: Counter[str] = Counter()
    for tags in data.item_tags:
        pop.update(tags)
    for per_paper in data.user_tags.values():
        for tags in per_paper.values():
            pop.update(tags)
    return pop


# --- CiteULike-a ---------------------------------------------------------------------------------

def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return text.splitlines()


def _counted_ints(path: Path, line_no: int, line: str) -> list[int]:
    """'3 10 11 12' -> [10, 11, 12], checking the count prefix."""
    try:
        nums = [int(x) for x in line.split()]
    except ValueError:
        raise InputError(f"{path}:{line_no}: expected integers, got {line[:60]!r}") from None
    if not nums or nums[0] != len(nums) - 1:
        raise InputError(f"{path}:{line_no}: count prefix does not match the number of ids")
    return nums[1:]


def load_citeulike(directory: Path | str = DEFAULT_CITEULIKE) -> EvalData:
    """titles.txt (all papers), items_with_abstracts.csv (abstracts for some), users.dat, item-tag.dat, tags.dat."""
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"CiteULike-a directory not found: {root} (pass --citeulike DIR)")
    titles = _lines(root / "titles.txt")
    n = len(titles)
    ids = [str(i) for i in range(n)]

    abstracts = [""] * n
    abs_path = root / "items_with_abstracts.csv"
    for line_no, row in _csv_rows(abs_path, required=("item_id", "abstract")):
        try:
            item = int(row["item_id"])
        except ValueError:
            raise InputError(f"{abs_path}:{line_no}: item_id is not an integer: {row['item_id']!r}") from None
        if not 0 <= item < n:
            raise InputError(f"{abs_path}:{line_no}: item_id {item} outside 0..{n - 1}")
        abstracts[item] = row["abstract"].strip()

    likes: dict[str, tuple[int, ...]] = {}
    users_path = root / "users.dat"
    for line_no, line in enumerate(_lines(users_path), start=1):
        items = _counted_ints(users_path, line_no, line)
        if any(not 0 <= i < n for i in items):
            raise InputError(f"{users_path}:{line_no}: item id outside 0..{n - 1}")
        likes[str(line_no - 1)] = tuple(dict.fromkeys(items))

    tag_names = [normalise_tag(t) for t in _lines(root / "tags.dat")]
    tags_path = root / "item-tag.dat"
    tag_lines = _lines(tags_path)
    if len(tag_lines) != n:
        raise InputError(f"{tags_path}: {len(tag_lines)} lines, expected one per title ({n})")
    item_tags: list[tuple[str, ...]] = []
    for line_no, line in enumerate(tag_lines, start=1):
        tag_ids = _counted_ints(tags_path, line_no, line) if line.strip() else []
        if any(not 0 <= t < len(tag_names) for t in tag_ids):
            raise InputError(f"{tags_path}:{line_no}: tag id outside tags.dat")
        item_tags.append(tuple(dict.fromkeys(tag_names[t] for t in tag_ids)))

    corpus = EvalCorpus(ids=ids, titles=[t.strip() for t in titles], abstracts=abstracts)
    log.info("CiteULike-a: %d papers (%d with abstracts), %d users", n, sum(1 for a in abstracts if a), len(likes))
    return EvalData(corpus=corpus, likes=likes, item_tags=item_tags, source=str(root))


# --- papers.jsonl + interactions.csv -----------------------------------------------------------------

def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    # Decoded line by line so that a bad byte is reported on its own line.
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                yield line_no, raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"{path}:{line_no}: not UTF-8 text") from None


def load_papers(path: Path | str) -> EvalCorpus:
    """One JSON object a line: {"id": ..., "title": ..., "abstract": ...}; abstract may be missing."""
    path = Path(path)
    ids: list[str] = []
    titles: list[str] = []
    abstracts: list[str] = []
    seen: dict[str, int] = {}
    for line_no, line in _text_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{path}:{line_no}: expected a JSON object")
        pid, title, abstract = obj.get("id"), obj.get("title"), obj.get("abstract", "")
        if isinstance(pid, bool) or not isinstance(pid, str | int) or not str(pid).strip():
            raise InputError(f"{path}:{line_no}: 'id' must be a non-empty string or integer")
        if not isinstance(title, str) or not title.strip():
            raise InputError(f"{path}:{line_no}: 'title' must be a non-empty string")
        if abstract is None:
            abstract = ""
        if not isinstance(abstract, str):
            raise InputError(f"{path}:{line_no}: 'abstract' must be a string")
        key = str(pid).strip()
        if key in seen:
            raise InputError(f"{path}:{line_no}: duplicate id {key!r} (first on line {seen[key]})")
        seen[key] = line_no
        ids.append(key)
        titles.append(title.strip())
        abstracts.append(abstract.strip())
    if not ids:
        raise InputError(f"{path}: no papers")
    return EvalCorpus(ids=ids, titles=titles, abstracts=abstracts)


def _csv_rows(path: Path, required: Sequence[str], allowed: Sequence[str] | None = None,
              ) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows as dicts with their line number; a bad header, a short or long row or a csv error -> InputError."""
    lines = _text_lines(path)
    reader = csv.reader(line for _, line in lines)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InputError(f"{path}: empty file, expected a header line") from None
    except csv.Error as exc:
        raise InputError(f"{path}:1: {exc}") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"{path}:1: header lacks column(s) {', '.join(missing)} (got {', '.join(header)})")
    if allowed is not None:
        unknown = [c for c in header if c not in allowed]
        if unknown:
            raise InputError(f"{path}:1: unknown column(s) {', '.join(unknown)} (allowed: {', '.join(allowed)})")
    if len(set(header)) != len(header):
        raise InputError(f"{path}:1: a column appears twice")
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(f"{path}:{reader.line_num}: {exc}") from None
        if not row:
            continue
        if len(row) != len(header):
            raise InputError(f"{path}:{reader.line_num}: {len(row)} fields, the header has {len(header)}")
        yield reader.line_num, dict(zip(header, row, strict=True))


def _check_time(path: Path, line_no: int, value: str) -> None:
    try:
        float(value)
        return
    except ValueError:
        pass
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{path}:{line_no}: time {value!r} is neither ISO 8601 nor Unix seconds") from None


def load_interactions(papers_path: Path | str, interactions_path: Path | str) -> EvalData:
    """interactions.csv: header with user, paper_id and optionally time, kind, tag.

    kind is one of like/save/star/click (a like; empty means like) or view/shown/dislike/hide
    (kept out of the likes). tag may hold several tags separated by ';'. time is checked but the
    protocol does not use it: history is a seeded random split, the same as for CiteULike-a.
    """
    corpus = load_papers(papers_path)
    path = Path(interactions_path)
    index = {pid: i for i, pid in enumerate(corpus.ids)}
    likes: dict[str, dict[int, None]] = {}
    tags: dict[str, dict[int, dict[str, None]]] = {}
    for line_no, row in _csv_rows(path, required=("user", "paper_id"), allowed=INTERACTION_COLUMNS):
        user, pid = row["user"].strip(), row["paper_id"].strip()
        if not user:
            raise InputError(f"{path}:{line_no}: empty user")
        paper = index.get(pid)
        if paper is None:
            raise InputError(f"{path}:{line_no}: paper_id {pid!r} is not in {Path(papers_path).name}")
        kind = row.get("kind", "").strip().lower() or "like"
        if kind not in LIKE_KINDS and kind not in OTHER_KINDS:
            known = ", ".join(sorted(LIKE_KINDS | OTHER_KINDS))
            raise InputError(f"{path}:{line_no}: unknown kind {kind!r} (expected one of {known})")
        when = row.get("time", "").strip()
        if when:
            _check_time(path, line_no, when)
        if kind in LIKE_KINDS:
            likes.setdefault(user, {})[paper] = None
        for raw in row.get("tag", "").split(";"):
            tag = normalise_tag(raw)
            if tag:
                tags.setdefault(user, {}).setdefault(paper, {})[tag] = None
    if not likes:
        raise InputError(f"{path}: no likes (kinds {', '.join(sorted(LIKE_KINDS))})")
    return EvalData(
        corpus=corpus,
        likes={u: tuple(ps) for u, ps in likes.items()},
        user_tags={u: {p: tuple(ts) for p, ts in per.items()} for u, per in tags.items()},
        source=f"{papers_path} + {path}",
    )
