"""Chunks follow sections: anchors, heading paths, merging of tiny sections, and the embedder's token window."""

from __future__ import annotations

from crawlrag.chunking import chunk_markdown
from crawlrag.embeddings.local import resolve_model_path
from crawlrag.models import SearchHit, section_url
from crawlrag.tokens import TokenizerCounter, counter_for_model_dir

WORDS = "Every sentence here says something about the section it belongs to, in plain words. "


def test_chunks_know_their_heading_path_and_anchor() -> None:
    markdown = (
        f"# Guide {{#guide}}\n\n{WORDS * 4}\n\n## Install {{#install}}\n\n{WORDS * 4}\n\n"
        f"### On Linux\n\n{WORDS * 4}\n\n`install(target, *, force=False)` {{#install-fn}}\n\n{WORDS * 4}"
    )
    chunks = chunk_markdown(markdown, url="https://docs.test/guide.html", title="Guide", chunk_size=400)
    assert [(chunk.headings, chunk.anchor) for chunk in chunks] == [
        ("# Guide", "guide"),
        ("# Guide > ## Install", "install"),
        ("# Guide > ## Install > ### On Linux", "install"),  # a heading without an id: the nearest one above
        ("# Guide > ## Install > ### On Linux", "install-fn"),  # a signature opens its own section
    ]
    assert chunks[1].content.startswith("## Install\n\n") and "{#" not in "".join(c.content for c in chunks)
    assert chunks[3].content.startswith("`install(target, *, force=False)`\n\n")


def test_tiny_sections_merge_and_long_ones_split_with_their_path() -> None:
    tiny = "".join(f"## Option {i} {{#option-{i}}}\n\nShort.\n\n" for i in range(6))
    long = f"## Details {{#details}}\n\n{WORDS * 30}"
    chunks = chunk_markdown(f"# Options\n\n{tiny}{long}", url="https://docs.test/o.html", title="O", chunk_size=300)
    assert chunks[0].content.count("## Option") >= 2  # merged up to the size
    details = [chunk for chunk in chunks if chunk.headings == "# Options > ## Details"]
    assert len(details) >= 3 and {chunk.anchor for chunk in details} == {"details"}
    assert all(len(chunk.content) <= 300 for chunk in details)


def test_no_chunk_exceeds_the_embedding_window() -> None:
    counter = counter_for_model_dir(resolve_model_path("sentence-transformers/all-MiniLM-L6-v2"))
    assert isinstance(counter, TokenizerCounter)
    # Identifier-heavy text and code are several tokens per word: 1,000 characters can be well over 256 tokens.
    code = "```python\n" + "\n".join(f"x_{i} = f__{i}(*a_{i}, **k_{i})[::{i}]" for i in range(150)) + "\n```"
    prose = " ".join(f"__dunder_{i}__(a_b_c, *args)" for i in range(120))
    markdown = f"# API {{#api}}\n\n{prose}\n\n{code}"
    plain = chunk_markdown(markdown, url="u", title="t", chunk_size=1000)
    assert max(counter.counts([chunk.content for chunk in plain])) > 256  # the case this guards against
    bounded = chunk_markdown(markdown, url="u", title="t", chunk_size=1000, token_counter=counter, max_tokens=256)
    assert max(counter.counts([chunk.content for chunk in bounded])) <= 256
    assert [chunk.chunk_index for chunk in bounded] == list(range(len(bounded)))
    assert {chunk.anchor for chunk in bounded} == {"api"}
    for line in code.splitlines()[1:-1]:  # no code is lost on the way
        assert any(line in chunk.content for chunk in bounded), line


def test_section_url() -> None:
    assert section_url("https://docs.test/a.html", "") == "https://docs.test/a.html"
    assert section_url("https://docs.test/a.html", "csv.DictWriter") == "https://docs.test/a.html#csv.DictWriter"
    assert section_url("https://docs.test/a.html", "a b") == "https://docs.test/a.html#a%20b"
    hit = SearchHit(1, "https://docs.test/a.html", "s", "t", "", 0, "c", anchor="x")
    assert hit.to_dict()["section_url"] == "https://docs.test/a.html#x"
