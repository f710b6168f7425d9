"""Turn arbitrary user text into safe keyword-search terms (no operator in user input ever reaches FTS syntax)."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
# An identifier is a run of word pieces joined by dots, underscores or hyphens: os.scandir, PYTHON_DONT_WRITE,
# a.b_c, --force-with-lease. Possessive quantifiers and the look-behind keep this linear: a plain version
# backtracks quadratically on long words.
_IDENTIFIER = re.compile(r"(?<![^\W_])[^\W_]++(?:[._-][^\W_]++)+", re.UNICODE)
# What marks a query as naming something rather than describing it: a joined identifier, an option, a call,
# a word in capitals or with an inner capital (SQLITE_BUSY, PRAGMA, DictWriter), or a path or file name.
_NAMING = re.compile(r"[._]\w|\w[.(]|^-|\s-|\b[A-Z]{2,}\b|\b[a-z]+[A-Z]\w*|\b[A-Z][a-z]+[A-Z]\w*|/", re.UNICODE)
MAX_TERMS = 32
# Keyword search scores every row its terms match. Past this many matched rows, the most common terms are left out
# of the query (see informative_terms): this bounds the work on large indexes, and on a docs site of a few
# thousand chunks it never applies. (Leaving out every term above a share of the rows, tried first, lost MRR on
# the git-doc dev set: a word common on one site, like "commit" or "branch" there, still tells pages apart.)
MAX_MATCHED_ROWS = 20_000
# Exact pruning (Fts5Split) is tried while the rare parts hold at most this share of the rows the query matches.
MAX_RARE_SHARE = 0.5

STOPWORDS = frozenset(
    (
        "a an and are as at be by can do does for from how i if in into is it its my of on or so than that the "
        "their then there these this to was what when where which while who why will with without you your"
    ).split()
)

QueryStyle = Literal["identifier", "natural"]


def keyword_terms(text: str) -> tuple[list[str], list[list[str]]]:
    """Single terms and identifier phrases found in `text`, lower-cased and de-duplicated.

    Stopwords are dropped unless the query is made of nothing else.
    """
    tokens = [token.lower() for token in _TOKEN.findall(text)]
    kept = [token for token in tokens if token not in STOPWORDS] or tokens
    terms = list(dict.fromkeys(kept))[:MAX_TERMS]
    phrases = [[part.lower() for part in _TOKEN.findall(match)] for match in _IDENTIFIER.findall(text)][:MAX_TERMS]
    return terms, phrases


def query_style(text: str) -> QueryStyle:
    """Whether `text` names something (an identifier, option, constant, a word or two) or describes it in prose.

    Named things are found by their exact words, described ones by meaning, so fusion weighs the two search
    sides by this.
    """
    words = [word for word in text.split() if _TOKEN.search(word) and word.lower() not in STOPWORDS]
    if _NAMING.search(text) or len(words) <= 2:
        return "identifier"
    return "natural"


def informative_terms(terms: list[str], doc_share: Mapping[str, float], total_rows: int) -> list[str]:
    """`terms` less the most common ones, dropped until the rows the rest match fit MAX_MATCHED_ROWS.

    `doc_share` maps a term to the share of the `total_rows` rows that hold it (a term it lacks counts as rare).
    The rarest term is always kept. Past a few thousand candidates, one more common term reorders the tail of the
    ranking rather than its top, while the rare ones decide which rows lead.
    """
    rarest_first = sorted(terms, key=lambda term: doc_share.get(term, 0.0))
    kept = set(rarest_first[:1])
    budget = MAX_MATCHED_ROWS - doc_share.get(rarest_first[0], 0.0) * total_rows if terms else 0
    for term in rarest_first[1:]:
        budget -= doc_share.get(term, 0.0) * total_rows
        if budget < 0:
            break
        kept.add(term)
    return [term for term in terms if term in kept]


@dataclass(frozen=True, slots=True)
class Fts5Query:
    """An FTS5 MATCH expression and the ways to rank it exactly while scoring fewer rows (see `splits`)."""

    match: str
    splits: tuple[Fts5Split, ...] = ()


@dataclass(frozen=True, slots=True)
class Fts5Split:
    """The query's rarest parts (`rare`) and the rest: a row holding none of the rare parts scores at most `bound`.

    bm25 is a sum over the query's parts of idf * f * (k1 + 1) / (f + k1 * length norm), which stays below
    idf * (k1 + 1) however often a part occurs. So once `limit` rows holding a rare part score above `bound`,
    rows that hold only common parts cannot reach the top: ranking `rare` alone gives every row holding no common
    part its exact score, and ranking `both` (rare AND common) gives the rest theirs, each part counted once.
    """

    rare: str
    both: str
    bound: float


# FTS5's bm25 constants and its floor for the idf of a term most rows hold.
BM25_K1 = 1.2
_MIN_IDF = 1e-6


def bm25_idf(share: float, total_rows: int) -> float:
    """FTS5's idf of a term held by `share` of `total_rows` rows."""
    # A cached share can be of a table that has shrunk since (a source deleted): never more rows than there are.
    held = min(max(share, 0.0), 1.0) * total_rows
    return max(math.log((total_rows - held + 0.5) / (held + 0.5)), _MIN_IDF)


def fts5_query(text: str, doc_share: Mapping[str, float] | None = None, total_rows: int = 0) -> Fts5Query | None:
    """The FTS5 query for `text`, or None when it holds no searchable word.

    Every term is double-quoted, so FTS5 operators in the input (`NEAR(`, `*`, `"`, `-`, `AND`) are plain words.
    Identifier phrases are added so that `os.scandir` ranks the adjacent pair above pages that mention both apart.
    With `doc_share` and `total_rows` (see informative_terms), the most common single terms may be left out, and
    splits into rare and common parts are offered, rarest first (phrases always count as rare: their share is
    not counted).
    """
    terms, phrases = keyword_terms(text)
    if not terms:
        return None
    if doc_share is not None:
        terms = informative_terms(terms, doc_share, total_rows)
    quoted = list(dict.fromkeys(f'"{" ".join(phrase)}"' for phrase in phrases if len(phrase) > 1))
    match = " OR ".join(dict.fromkeys(quoted + [f'"{term}"' for term in terms]))
    if doc_share is None:
        return Fts5Query(match)
    rarest = sorted(terms, key=lambda term: doc_share.get(term, 0.0))
    held = [doc_share.get(term, 0.0) for term in rarest]
    splits = []
    for cut in range(1, len(rarest)):
        if sum(held[:cut]) > MAX_RARE_SHARE * sum(held):
            break  # ranking the rare parts first would save less than a failed try costs
        rare = " OR ".join(quoted + [f'"{term}"' for term in rarest[:cut]])
        common = " OR ".join(f'"{term}"' for term in rarest[cut:])
        bound = sum(bm25_idf(doc_share.get(term, 0.0), total_rows) for term in rarest[cut:]) * (BM25_K1 + 1)
        splits.append(Fts5Split(rare, f"({rare}) AND ({common})", bound))
    return Fts5Query(match, tuple(splits))


def fts5_match(text: str, doc_share: Mapping[str, float] | None = None, total_rows: int = 0) -> str | None:
    """The MATCH expression of fts5_query(text, ...), or None when `text` holds no searchable word."""
    query = fts5_query(text, doc_share, total_rows)
    return query.match if query else None


class TermShares:
    """The share of an index's rows holding each term, counted by the store and remembered for `ttl` seconds.

    Counting a common term's rows reads its whole posting list (a few ms at 100k rows), about what the search
    itself costs, so counts are cached; a stale share only shifts which terms count as common. Thread-safe.
    """

    def __init__(self, ttl: float = 300.0, max_terms: int = 20_000) -> None:
        self._ttl = ttl
        self._max_terms = max_terms
        self._counts: dict[tuple[str, str], tuple[int, float]] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every count (after a delete: the shares of what is left change at once)."""
        with self._lock:
            self._counts.clear()

    def shares(
        self, index: str, terms: Sequence[str], total_rows: int, count: Callable[[str], int]
    ) -> dict[str, float]:
        """{term: share} for `terms` of `index`; `count(term)` counts the rows holding a term when needed."""
        now = time.monotonic()
        result: dict[str, float] = {}
        for term in terms:
            with self._lock:
                cached = self._counts.get((index, term))
            if cached is None or now - cached[1] > self._ttl:
                cached = (count(term), now)
                with self._lock:
                    if len(self._counts) >= self._max_terms:
                        self._counts.clear()
                    self._counts[(index, term)] = cached
            result[term] = cached[0] / max(total_rows, 1)
        return result
