"""The output schema of every tool: its success object, or the failure object every tool shares.

Objects whose shape this module owns are closed (`additionalProperties: false`); the crawl report and a job's
options are the pipeline's records and stay open, so a new counter there does not break clients.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

TEXT: Schema = {"type": "string"}
INT: Schema = {"type": "integer", "minimum": 0}
NUMBER_OR_NULL: Schema = {"type": ["number", "null"]}
TEXT_OR_NULL: Schema = {"type": ["string", "null"]}
OPEN_OBJECT: Schema = {"type": "object", "additionalProperties": True}


def closed(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": required | (optional or {}),
        "required": list(required),
        "additionalProperties": False,
    }


FAILURE: Schema = {
    "type": "object",
    "properties": {
        "success": {"const": False},
        "error": {"type": "string", "description": "What went wrong and what to do about it"},
        "argument": {"type": "string", "description": "The argument that broke a rule of the input schema"},
        "rule": {"type": "string", "description": "The JSON Schema keyword it broke (type, maximum, required...)"},
    },
    "required": ["success", "error"],
    # A failed crawl also carries its job's fields.
    "additionalProperties": True,
}


def tool_output(success: Schema) -> Schema:
    """Either the tool's success object (`success: true`) or the shared failure object."""
    success = success | {"properties": {"success": {"const": True}} | success["properties"]}
    success["required"] = ["success", *success["required"]]
    return {"type": "object", "oneOf": [success, FAILURE]}


SOURCE_VERSION = closed(
    {
        "version": TEXT,
        "pages": INT,
        "chunks": INT,
        "words": INT,
        "code_examples": INT,
        "last_crawled": TEXT_OR_NULL,
        "created_at": TEXT_OR_NULL,
        "summary": TEXT,
    }
)

SOURCE = closed(
    {
        "source_id": TEXT | {"description": "The site (host name, or a local source's id)"},
        "summary": TEXT,
        "pages": INT,
        "chunks": INT,
        "words": INT,
        "code_examples": INT,
        "embedding_model": TEXT_OR_NULL,
        "embedding_dim": {"type": ["integer", "null"]},
        "created_at": TEXT_OR_NULL,
        "last_crawled": TEXT_OR_NULL,
        "default_version": TEXT | {"description": "The version a search without `version` reads"},
        "versions": {"type": "array", "items": SOURCE_VERSION, "description": "Indexed versions, newest first"},
    }
)

_SCORES: dict[str, Schema] = {
    "similarity": NUMBER_OR_NULL,
    "keyword_score": NUMBER_OR_NULL,
    "score": {"type": "number"},
}
_RESULT_COMMON: dict[str, Schema] = {
    "tokens": INT,
    "version": TEXT | {"description": "The version of the site the result comes from"},
    "indexed_at": TEXT_OR_NULL | {"description": "When its page was last crawled (stored or found unchanged)"},
}
_RESULT_OPTIONAL: dict[str, Schema] = {
    "rerank_score": NUMBER_OR_NULL,
    "section_url": TEXT,
    "anchor": TEXT_OR_NULL,
    "kind": {"type": "string", "enum": ["content", "index", "changelog"]},
}

CHUNK_RESULT = closed(
    {
        "url": TEXT,
        "title": TEXT,
        "headings": TEXT,
        "content": TEXT,
        "source_id": TEXT,
        "chunk_index": INT,
        "chunk_indexes": {"type": "array", "items": INT, "description": "The stored chunks this text joins"},
        "expanded": {"type": "boolean", "description": "True when the text is the hit's whole section"},
        **_SCORES,
        **_RESULT_COMMON,
    },
    _RESULT_OPTIONAL,
)

CODE_RESULT = closed(
    {
        "url": TEXT,
        "language": TEXT,
        "code": TEXT,
        "summary": TEXT,
        "headings": TEXT,
        "source_id": TEXT,
        **_SCORES,
        **_RESULT_COMMON,
    },
    _RESULT_OPTIONAL,
)


def search_answer(result: Schema) -> Schema:
    return closed(
        {
            "query": TEXT,
            "source_filter": TEXT_OR_NULL,
            "version_filter": TEXT_OR_NULL,
            "versions": {
                "type": "object",
                "additionalProperties": TEXT,
                "description": "The version searched of each site (site -> version)",
            },
            "search_mode": {"enum": ["hybrid", "vector", "keyword"]},
            "reranking_applied": {"type": "boolean"},
            "count": INT,
            "results": {"type": "array", "items": result},
            "tokens": {"type": "integer", "minimum": 0, "description": "Tokens of all results' text together"},
            "max_tokens": INT,
            "truncated": {"type": "boolean", "description": "True when results were shortened or left out"},
            "notice": TEXT,
        },
        {
            "reranking_reason": TEXT,
            "degraded": TEXT,
            "note": {"type": "string", "description": "Why fewer results than match_count came back"},
        },
    )


PROGRESS = closed(
    {
        "pages_done": INT,
        "pages_total": {"type": ["integer", "null"]},
        "pages_failed": INT,
        "pages_skipped": INT,
        "chunks_stored": INT,
    }
)

JOB_STATUS = {"enum": ["queued", "running", "completed", "failed", "cancelled", "interrupted"]}
_JOB_FIELDS: dict[str, Schema] = {
    "job_id": TEXT,
    "url": TEXT,
    "status": JOB_STATUS,
    "crawl_type": TEXT,
    "options": OPEN_OBJECT,
    "progress": PROGRESS,
    "created_at": TEXT,
    "updated_at": TEXT,
    "worker": TEXT_OR_NULL | {"description": "host:pid of the process that runs (or ran) the job"},
    "started_at": TEXT_OR_NULL,
    "finished_at": TEXT_OR_NULL,
}
_JOB_OPTIONAL: dict[str, Schema] = {
    "job_error": TEXT,
    "result": OPEN_OBJECT | {"description": "The crawl report (pages stored, unchanged, failures...)"},
    "message": TEXT,
}
JOB = closed(_JOB_FIELDS, _JOB_OPTIONAL)

FETCHED_PAGE = closed(
    {
        "url": TEXT,
        "title": TEXT,
        "section": TEXT_OR_NULL,
        "markdown": TEXT,
        "tokens": INT,
        "max_tokens": INT,
        "part": {"type": "integer", "minimum": 1},
        "parts": {"type": "integer", "minimum": 1},
        "truncated": {"type": "boolean"},
        "sections": {"type": "array", "items": TEXT, "description": "Heading paths of the page, for `section`"},
        "notice": TEXT,
    },
    {"next_part": {"type": "integer", "minimum": 2}},
)

OUTPUT_SCHEMAS: dict[str, Schema] = {
    "get_available_sources": tool_output(closed({"sources": {"type": "array", "items": SOURCE}, "count": INT})),
    "delete_source": tool_output(
        closed(
            {
                "source": TEXT,
                "deleted": {
                    "type": "array",
                    "items": closed({"site": TEXT, "version": TEXT, "pages": INT, "chunks": INT, "code_examples": INT}),
                    "description": "What was removed, per version",
                },
                "remaining_versions": {"type": "array", "items": TEXT},
            }
        )
    ),
    "perform_rag_query": tool_output(search_answer(CHUNK_RESULT)),
    "search_code_examples": tool_output(search_answer(CODE_RESULT)),
    "fetch_page": tool_output(FETCHED_PAGE),
    "crawl_single_page": tool_output(JOB),
    "smart_crawl_url": tool_output(JOB),
    "resume_crawl": tool_output(JOB),
    "refresh_source": tool_output(
        closed(
            {
                "jobs": {"type": "array", "items": JOB, "description": "One refresh job per source"},
                "count": INT,
                "not_refreshed": {"type": "array", "items": TEXT, "description": "Sources left out, and why"},
            },
            {"message": TEXT},
        )
    ),
    "get_crawl_status": tool_output(JOB),
    "cancel_crawl": tool_output(JOB),
    "list_crawl_jobs": tool_output(
        closed(
            {
                "jobs": {"type": "array", "items": JOB},
                "count": INT,
                "running": INT,
                "queued": INT,
                "max_running": INT,
                "finished_in_this_process": INT,
            }
        )
    ),
}
