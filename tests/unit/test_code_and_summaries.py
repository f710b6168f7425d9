from __future__ import annotations

from crawlrag.code_examples import extract_code_examples
from crawlrag.summaries import first_meaningful_paragraph, summarize_source

CODE = "\n".join(f"row_{i} = reader.read({i})" for i in range(20))


def page(fence: str = "```", lang: str = "python") -> str:
    return (
        "# CSV\n\n## Reading\n\nUse the reader to read rows from a file. It returns lists.\n\n"
        f"{fence}{lang}\n{CODE}\n{fence}\n\nThe rows come back as lists of strings.\n\n"
        "```\nshort\n```\n"
    )


def test_extracts_long_blocks_with_context() -> None:
    [example] = extract_code_examples(page(), url="http://x/csv", min_chars=100)
    assert example.language == "python"
    assert example.code == CODE
    assert example.headings == "# CSV > ## Reading"
    assert "Use the reader" in example.context_before
    assert "come back as lists" in example.context_after
    assert example.summary == "python example: Reading — Use the reader to read rows from a file."


def test_tilde_fences_and_no_language() -> None:
    [example] = extract_code_examples(page("~~~", ""), url="u", min_chars=100)
    assert example.language == "" and example.code == CODE
    assert example.summary.startswith("Code example: Reading")


def test_nested_fences_stay_one_block() -> None:
    md = "````markdown\n```python\n" + CODE + "\n```\n````"
    [example] = extract_code_examples(md, url="u", min_chars=50)
    assert example.language == "markdown" and "```python" in example.code


def test_min_chars_and_determinism() -> None:
    assert extract_code_examples(page(), url="u", min_chars=10_000) == []
    assert extract_code_examples(page(), url="u", min_chars=100) == extract_code_examples(
        page(), url="u", min_chars=100
    )


def test_source_summary_is_title_and_first_paragraph() -> None:
    md = "# Docs\n\n[Home](/) | [API](/api)\n\nShort.\n\nThis library parses and writes CSV files in many dialects.\n"
    assert first_meaningful_paragraph(md) == "This library parses and writes CSV files in many dialects."
    assert summarize_source("x.org", "Docs", md) == "Docs: This library parses and writes CSV files in many dialects."
    assert summarize_source("x.org", "", "") == "x.org"
    assert len(summarize_source("x", "T", "word " * 500, max_chars=100)) <= 100
