from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawlrag.chunking import chunk_markdown, link_density, parse_blocks

LONG_PARAGRAPH = " ".join(f"Sentence number {i} explains a detail of the API." for i in range(60))


def test_heading_paths_follow_nesting() -> None:
    md = "# A\n\nintro\n\n## B\n\nbody b\n\n### C\n\nbody c\n\n## D\n\nbody d"
    blocks = [b for b in parse_blocks(md) if not b.is_heading]
    assert [b.headings for b in blocks] == ["# A", "# A > ## B", "# A > ## B > ### C", "# A > ## D"]


def test_splits_at_headings_when_sections_are_big_enough() -> None:
    md = f"# A\n\n{'alpha ' * 60}\n\n## B\n\n{'beta ' * 60}"
    chunks = chunk_markdown(md, url="u", title="T", chunk_size=500)
    assert [c.headings for c in chunks] == ["# A", "# A > ## B"]
    assert chunks[1].content.startswith("## B")


def test_small_sections_are_merged() -> None:
    md = "# A\n\none\n\n## B\n\ntwo\n\n## C\n\nthree"
    chunks = chunk_markdown(md, url="u", title="T", chunk_size=1000)
    assert len(chunks) == 1
    assert "three" in chunks[0].content


def test_long_paragraph_splits_at_sentences() -> None:
    chunks = chunk_markdown(LONG_PARAGRAPH, url="u", title="T", chunk_size=300)
    assert len(chunks) > 5
    assert all(len(c.content) <= 300 for c in chunks)
    assert all(c.content.endswith(".") for c in chunks)


def test_never_splits_inside_code_fence() -> None:
    code = "```python\n" + "\n".join(f"value_{i} = compute({i})" for i in range(30)) + "\n```"
    md = f"# Code\n\nBefore.\n\n{code}\n\nAfter."
    chunks = chunk_markdown(md, url="u", title="T", chunk_size=400)
    holding = [c for c in chunks if "value_0 " in c.content]
    assert len(holding) == 1 and code in holding[0].content


def test_huge_code_block_is_split_and_refenced() -> None:
    code = "~~~js\n" + "\n".join(f"let v{i} = {i};" for i in range(400)) + "\n~~~"
    chunks = chunk_markdown(code, url="u", title="T", chunk_size=300)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.content.startswith("~~~js") and chunk.content.rstrip().endswith("~~~")


def test_fence_with_inner_backticks_and_tildes() -> None:
    md = "````md\n```python\nx = 1\n```\n````\n\n~~~\n``` not a close\n~~~\n\ntail"
    blocks = parse_blocks(md)
    assert [b.is_code for b in blocks] == [True, True, False]


def test_links_keep_their_text_only_outside_code() -> None:
    md = '# [`csv`](http://h/csv.html#m "csv") — CSV¶\n\nSee [`dict`](http://h/a.html "dict").\n\n```\n[x](y)\n```'
    [chunk] = chunk_markdown(md, url="u", title="T")
    assert chunk.headings == "# `csv` — CSV"
    assert chunk.content == "# `csv` — CSV\n\nSee `dict`.\n\n```\n[x](y)\n```"


def test_link_lists_are_left_out() -> None:
    toc = "\n".join(f"* [Section {i} about things](http://h/s{i}.html)" for i in range(10))
    md = f"# Contents\n\n{toc}\n\nSee [the guide](http://h/g.html) for a longer explanation of every step here."
    [chunk] = chunk_markdown(md, url="u", title="T")
    assert "Section 1" not in chunk.content and "See the guide for a longer" in chunk.content
    [kept] = chunk_markdown(md, url="u", title="T", max_link_density=1.0)
    assert "Section 1 about things" in kept.content
    assert link_density("[ab](x) cd") == pytest.approx(2 / 5)


def test_chunk_metadata() -> None:
    chunks = chunk_markdown("# Title\n\nHello world here.", url="http://x/a", title="Page")
    chunk = chunks[0]
    assert (chunk.url, chunk.title, chunk.chunk_index) == ("http://x/a", "Page", 0)
    assert chunk.char_count == len(chunk.content) and chunk.word_count == 5
    assert len(chunk.content_hash) == 64


def test_empty_markdown_has_no_chunks() -> None:
    assert chunk_markdown("  \n\n ", url="u", title="T") == []


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab #`~\n.-"), max_size=3000), st.integers(200, 1500))
def test_chunking_keeps_all_text_and_respects_hard_limit(text: str, size: int) -> None:
    chunks = chunk_markdown(text, url="u", title="T", chunk_size=size)
    # Every non-space character survives, in order (code splitting may add fence lines; headings are
    # re-written without closing hashes, so hashes are left out of the comparison).
    joined = "".join("".join(c.content.split()) for c in chunks).replace("#", "")
    source = "".join(text.split()).replace("#", "")
    it = iter(joined)
    assert all(ch in it for ch in source)
    assert all(c.char_count <= size * 3 + size for c in chunks)
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
