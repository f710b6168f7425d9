"""Turn arbitrary user text into safe keyword-search terms (no operator in user input ever reaches FTS syntax)."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
# An identifier is a run of word pieces joined by dots or underscores: os.scandir, PYTHON_DONT_WRITE, a.b_c.
# Possessive quantifiers and the look-behind keep this linear: a plain version backtracks quadratically on long words.
_IDENTIFIER = re.compile(r"(?<![^\W_])[^\W_]++(?:[._][^\W_]++)+", re.UNICODE)
MAX_TERMS = 32

STOPWORDS = frozenset(
    (
        "a an and are as at be by can do does for from how i if in into is it its my of on or so than that the "
        "their then there these this to was what when where which while who why will with without you your"
    ).split()
)


def keyword_terms(text: str) -> tuple[list[str], list[list[str]]]:
    """Single terms and identifier phrases found in `text`, lower-cased and de-duplicated.

    Stopwords are dropped unless the query is made of nothing else.
    """
    tokens = [token.lower() for token in _TOKEN.findall(text)]
    kept = [token for token in tokens if token not in STOPWORDS] or tokens
    terms = list(dict.fromkeys(kept))[:MAX_TERMS]
    phrases = [[part.lower() for part in _TOKEN.findall(match)] for match in _IDENTIFIER.findall(text)][:MAX_TERMS]
    return terms, phrases


def fts5_match(text: str) -> str | None:
    """An FTS5 MATCH expression for `text`, or None when it holds no searchable word.

    Every term is double-quoted, so FTS5 operators in the input (`NEAR(`, `*`, `"`, `-`, `AND`) are plain words.
    Identifier phrases are added so that `os.scandir` ranks the adjacent pair above pages that mention both apart.
    """
    terms, phrases = keyword_terms(text)
    if not terms:
        return None
    parts = [f'"{" ".join(phrase)}"' for phrase in phrases if len(phrase) > 1]
    parts += [f'"{term}"' for term in terms]
    return " OR ".join(dict.fromkeys(parts))
