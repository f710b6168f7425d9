"""The answer assembly on its own: sections joined, budgets shared and kept, code never cut."""

from __future__ import annotations

from dataclasses import dataclass

from crawlrag.answers import GAP, assemble, assemble_code, join_chunks, section_text, shorten
from crawlrag.tokens import EstimatedTokenCounter

COUNTER = EstimatedTokenCounter()


@dataclass
class Hit:
    url: str
    headings: str
    chunk_index: int
    content: str


@dataclass
class Code:
    code: str
    summary: str


def prose(words: int, tag: str = "word") -> str:
    return " ".join(f"{tag}{index}." if index % 8 == 7 else f"{tag}{index}" for index in range(words))


def test_chunks_of_one_section_become_one_result_in_page_order() -> None:
    hits = [
        Hit("u1", "# A > ## B", 3, "third"),
        Hit("u2", "# C", 0, "other page"),
        Hit("u1", "# A > ## B", 2, "second"),
        Hit("u1", "# A > ## B", 5, "fifth"),
    ]
    answer = assemble(hits, match_count=5, max_tokens=1000, counter=COUNTER)

    assert [passage.hit.url for passage in answer.passages] == ["u1", "u2"]
    assert answer.passages[0].chunk_indexes == [2, 3, 5]
    assert answer.passages[0].text == f"second\n\nthird{GAP}fifth"
    assert answer.truncated is False and answer.tokens == sum(COUNTER.count(p.text) for p in answer.passages)


def test_the_budget_is_shared_and_never_exceeded() -> None:
    hits = [Hit(f"u{index}", "# H", 0, prose(400, f"p{index}w")) for index in range(5)]
    answer = assemble(hits, match_count=5, max_tokens=300, counter=COUNTER)

    assert answer.tokens <= 300 and answer.truncated
    assert len(answer.passages) == 5  # a long first hit does not starve the others
    assert sum(COUNTER.count(passage.text) for passage in answer.passages) == answer.tokens


def test_a_code_block_is_never_cut() -> None:
    code = "```python\n" + "\n".join(f"value_{index} = compute({index})" for index in range(60)) + "\n```"
    text = f"Intro sentence.\n\n{code}\n\nAfter the code."
    shortened, tokens = shorten(text, 60, COUNTER)

    assert shortened == "Intro sentence." and tokens <= 60
    whole, _ = shorten(text, 10_000, COUNTER)
    assert whole == text


def test_budget_left_widens_a_hit_to_its_section() -> None:
    markdown = (
        "# Page\n\nIntro.\n\n## Setup\n\nFirst step.\n\nSecond step.\n\n### Detail\n\nDetail text.\n\n## Other\n\nElse."
    )
    hits = [Hit("u", "# Page > ## Setup", 1, "Second step.")]
    section = section_text(markdown, "# Page > ## Setup")
    answer = assemble(hits, match_count=1, max_tokens=500, counter=COUNTER, section=lambda hit: section)

    assert section == "## Setup\n\nFirst step.\n\nSecond step.\n\n### Detail\n\nDetail text."
    assert answer.passages[0].expanded and answer.passages[0].text == section
    narrow = assemble(hits, match_count=1, max_tokens=6, counter=COUNTER, section=lambda hit: section)
    assert not narrow.passages[0].expanded and narrow.tokens <= 6


def test_join_keeps_each_chunk_once() -> None:
    indexes, text = join_chunks([Hit("u", "", 1, "b"), Hit("u", "", 0, "a"), Hit("u", "", 1, "b")])
    assert indexes == [0, 1] and text == "a\n\nb"


def test_code_examples_are_whole_or_left_out() -> None:
    big, small = Code("x = 1\n" * 200, "A big one."), Code("y = 2", "A small one. With more words here.")
    chosen, tokens, truncated = assemble_code([big, small], match_count=2, max_tokens=50, counter=COUNTER)

    assert [passage.hit for passage in chosen] == [small] and truncated and tokens <= 50
