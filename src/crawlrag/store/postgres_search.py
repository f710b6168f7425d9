"""The SQL of PostgreSQL search: one statement per search, returning whole hits.

Vector search without a source filter walks the HNSW index. With a filter it is exact: the source's rows are
fenced in a MATERIALIZED CTE and sorted by distance, because an HNSW scan filtered afterwards returns whatever
few of its `ef_search` candidates happen to belong to the source (0.2 to 0.5 of 10 for a source holding 1% of
the rows), and a source's rows are few enough to scan (about 4 ms for 1000 of them).

Keyword search ranks with a BM25-like score computed from PostgreSQL's own pieces: the sum over query terms of
idf(term) * ts_rank(weights, text, term, 1), where ts_rank saturates with term frequency, weights headings and
titles above body text and divides by the log of the text's length, and the idf is counted from the very rows
that match (every row containing a term matches the OR query), so it costs no extra index scan. Like FTS5's
bm25, it ranks every matching row: the cost grows with the number of matches, not with the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from crawlrag.store.query_terms import informative_terms, keyword_terms


@dataclass(frozen=True, slots=True)
class SearchTable:
    name: str
    columns: str  # the hit's fields, in the order of SearchHit / CodeHit
    weights: str  # ts_rank weights {D, C, B, A}; PostgreSQL caps each at 1
    source_rows: str  # the number of rows the filtered sources hold, for the idf under a source filter


CHUNKS = SearchTable(
    name="crawled_pages",
    columns="c.id, c.url, c.source_id, c.title, c.headings, c.chunk_number, c.content, c.anchor, c.kind",
    # body 1 : title 2 : headings 3, the SQLite store's bm25 column weights
    weights="{0.3333, 0, 0.6667, 1.0}",
    source_rows="SELECT coalesce(sum(chunk_count), 0) FROM pages WHERE source_id = ANY(%(sources)s)",
)
CODE = SearchTable(
    name="code_examples",
    columns="c.id, c.url, c.source_id, c.language, c.content, c.summary, c.headings",
    # code 1 : headings 2 : summary 2
    weights="{0.5, 0, 1.0, 1.0}",
    source_rows="SELECT count(*) FROM code_examples WHERE source_id = ANY(%(sources)s)",
)

# Below this many rows the planner's row estimate may be stale or unset (-1 before the first ANALYZE), so rows
# are counted; above it the estimate is close enough for an idf and counting would cost a scan per query.
_ESTIMATE_ABOVE = 10_000


def vector_sql(table: SearchTable, filtered: bool, kinds: bool = False) -> str:
    """Parameters: %(query)s (the vector), %(limit)s, %(sources)s (a text[] of source keys) when filtered,
    %(kinds)s (a text[]) with kinds.

    A kind filter alone stays on the HNSW index (kinds are few and broad, unlike sources): its rows are filtered
    from the index scan, as pgvector does for any WHERE clause.
    """
    kind_clause = "kind = ANY(%(kinds)s)" if kinds else ""
    if not filtered:
        # ORDER BY the bare distance expression, so the planner can use the HNSW index.
        where = f"WHERE c.{kind_clause}" if kinds else ""
        return f"""
            SELECT {table.columns}, 1 - (c.embedding <=> %(query)s) AS similarity
            FROM {table.name} c {where} ORDER BY c.embedding <=> %(query)s LIMIT %(limit)s
        """
    also = f"AND {kind_clause}" if kinds else ""
    return f"""
        WITH candidates AS MATERIALIZED (
            SELECT id, embedding <=> %(query)s AS distance FROM {table.name} WHERE source_id = ANY(%(sources)s) {also}
        ), top AS (
            SELECT id, distance FROM candidates ORDER BY distance, id LIMIT %(limit)s
        )
        SELECT {table.columns}, 1 - top.distance AS similarity
        FROM top JOIN {table.name} c ON c.id = top.id ORDER BY top.distance, top.id
    """


def keyword_sql(table: SearchTable, filtered: bool, kinds: bool = False) -> str:
    """Parameters: %(terms)s (tsquery texts, one per term), %(query)s (their OR), %(limit)s, [%(sources)s],
    [%(kinds)s]."""
    source_clause = "AND c.source_id = ANY(%(sources)s)" if filtered else ""
    if kinds:
        source_clause += " AND c.kind = ANY(%(kinds)s)"
    total_rows = (
        table.source_rows
        if filtered
        else f"""
            SELECT CASE WHEN r.reltuples >= {_ESTIMATE_ABOVE} THEN r.reltuples
                        ELSE (SELECT count(*) FROM {table.name}) END
            FROM pg_class r WHERE r.oid = '{table.name}'::regclass
        """
    )
    return f"""
        WITH terms AS MATERIALIZED (
            SELECT q.tsq FROM unnest(%(terms)s::text[]) AS u(term)
            CROSS JOIN LATERAL to_tsquery('english', u.term) AS q(tsq)
            WHERE numnode(q.tsq) > 0
        ), matches AS MATERIALIZED (
            SELECT c.id, c.search_text FROM {table.name} c
            WHERE c.search_text @@ to_tsquery('english', %(query)s) {source_clause}
        ), total AS (
            SELECT ({total_rows})::float8 AS rows
        ), weighted AS MATERIALIZED (
            SELECT t.tsq, ln(1 + (greatest(total.rows, d.df) - d.df + 0.5) / (d.df + 0.5)) AS idf
            FROM terms t CROSS JOIN total
            CROSS JOIN LATERAL (SELECT count(*)::float8 AS df FROM matches m WHERE m.search_text @@ t.tsq) AS d
        ), top AS (
            SELECT m.id, (SELECT sum(w.idf * ts_rank('{table.weights}', m.search_text, w.tsq, 1))
                          FROM weighted w WHERE m.search_text @@ w.tsq) AS score
            FROM matches m ORDER BY score DESC, m.id LIMIT %(limit)s
        )
        SELECT {table.columns}, top.score FROM top JOIN {table.name} c ON c.id = top.id
        ORDER BY top.score DESC, top.id
    """


def lexeme(term: str) -> str:
    # Terms are runs of letters and digits already; quoting keeps each one a single operand regardless.
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def tsquery_terms(text: str, doc_share: Mapping[str, float] | None = None, total_rows: int = 0) -> list[str]:
    """to_tsquery texts for the words and identifier phrases of `text` (empty when it holds no word).

    No character of user input reaches tsquery syntax except inside a quoted operand, so `!`, `&`, `:*`,
    `<->` and friends are never operators. Identifier phrases (`os.scandir` -> 'os' <-> 'scandir') rank the
    adjacent pair above rows that mention both words apart, like the SQLite store's FTS5 phrases. With
    `doc_share` and `total_rows`, the most common single terms may be left out (see query_terms.informative_terms).
    """
    terms, phrases = keyword_terms(text.replace("\x00", " "))
    if doc_share is not None:
        terms = informative_terms(terms, doc_share, total_rows)
    parts = [" <-> ".join(lexeme(part) for part in phrase) for phrase in phrases if len(phrase) > 1]
    parts += [lexeme(term) for term in terms]
    return list(dict.fromkeys(parts))


def total_rows_sql(table: SearchTable) -> str:
    """The table's row count: the planner's estimate when it is large enough to trust, else counted."""
    return f"""
        SELECT CASE WHEN r.reltuples >= {_ESTIMATE_ABOVE} THEN r.reltuples::bigint
                    ELSE (SELECT count(*) FROM {table.name}) END
        FROM pg_class r WHERE r.oid = '{table.name}'::regclass
    """


def term_rows_sql(table: SearchTable) -> str:
    """Parameter: %(term)s, one tsquery text; the number of rows holding it (a GIN index scan)."""
    return f"SELECT count(*) FROM {table.name} WHERE search_text @@ to_tsquery('english', %(term)s)"
