"""Prompts for the LLM helpers. The page comes first in every per-chunk prompt, so the provider's prompt cache
(OpenAI's automatic prefix caching, vLLM's --enable-prefix-caching) serves it once per page, not once per chunk."""

from __future__ import annotations

# Upstream's budget: enough of a documentation page to situate any of its chunks, far below context limits.
MAX_DOCUMENT_CHARS = 25_000
MAX_CODE_CHARS = 1_500
MAX_CONTEXT_CHARS = 1_000
MAX_SUMMARY_CHARS = 400


def chunk_context(document: str, chunk: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You situate chunks of documentation within their page for search."},
        {
            "role": "user",
            "content": f"<document>\n{document[:MAX_DOCUMENT_CHARS]}\n</document>\n"
            f"Here is the chunk we want to situate within the whole document\n<chunk>\n{chunk}\n</chunk>\n"
            "Please give a short succinct context to situate this chunk within the overall document for the "
            "purposes of improving search retrieval of the chunk. Answer only with the succinct context and "
            "nothing else.",
        },
    ]


def code_summary(code: str, before: str, after: str, language: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You write concise summaries of code examples for a search index."},
        {
            "role": "user",
            "content": f"<context_before>\n{before[-500:]}\n</context_before>\n"
            f"<code language={language or 'unknown'!r}>\n{code[:MAX_CODE_CHARS]}\n</code>\n"
            f"<context_after>\n{after[:500]}\n</context_after>\n"
            "Summarize in 2-3 sentences what this example demonstrates and its purpose. Answer only with the "
            "summary.",
        },
    ]


def source_summary(source_id: str, title: str, content: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You summarize documentation sites for a library catalogue."},
        {
            "role": "user",
            "content": f"<source_content>\n{content[:MAX_DOCUMENT_CHARS]}\n</source_content>\n"
            f"The above is the start page of the source {source_id!r} (title: {title!r}). Write a 3-5 sentence "
            "summary of what this library, tool or framework is and what its documentation covers. Answer only "
            "with the summary.",
        },
    ]
