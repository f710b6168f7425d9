"""End to end: local folders, repositories, archives, PDFs and specs crawled, indexed and found by Search."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from local_fixtures import (
    ARCHIVE_FILES,
    BUILD_MARKER,
    HIDDEN_MARKER,
    IGNORED_MARKER,
    MARKERS,
    OPENAPI_YAML,
    OUTSIDE_MARKER,
    build_folder,
    build_pdf,
    build_repository,
    build_tar_gz,
    build_zip,
    build_zip_bomb,
)
from local_index import Indexed

from crawlrag.local import LocalAccessError
from crawlrag.local.policy import file_url

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="repository sources need the git command")


async def test_folder_every_format_searchable_and_ignored_files_not_stored(
    indexed: Indexed, allowed: Path, tmp_path: Path
) -> None:
    docs = build_folder(allowed, outside=tmp_path / "outside")
    report = await indexed.index(docs)

    assert report.progress.stored == len(MARKERS), report.to_dict()
    assert report.source_ids == {"handbook"}
    for name, marker in MARKERS.items():
        found = await indexed.keyword_urls(marker, source_id="handbook")
        assert any(url.endswith(name) for url in found), (name, found)
    for marker in (IGNORED_MARKER, HIDDEN_MARKER, BUILD_MARKER, OUTSIDE_MARKER, "outputword", "not-a-spec"):
        assert await indexed.keyword_urls(marker) == [], marker
    # The symlink to a file outside the folder is reported, by URL, with the reason.
    [link] = [s for s in report.skipped if s.url.endswith("/linked.md")]
    assert "outside the folder" in link.reason
    # Each page's URL is its file:// URL; MDX keeps the text, not the JSX.
    page = indexed.store.get_page(file_url(docs / "sub" / "component.mdx"))
    assert page is not None and page.source_id == "handbook"
    markdown = indexed.store.page_markdown(page.url) or ""
    assert "quokkaphile daemon" in markdown and "<Tabs" not in markdown and "import" not in markdown
    assert "<Keep>code stays</Keep>" in markdown  # code fences are left alone
    rst = indexed.store.page_markdown(file_url(docs / "reference.rst")) or ""
    assert "# Reference" in rst and "## Options" in rst and "```python" in rst
    # The source got a summary (from the first page, there being no README or index).
    [source] = indexed.store.list_sources()
    assert source.pages == len(MARKERS) and source.summary

    # Unchanged files are recognised by content hash, a changed one is stored again.
    (docs / "notes.txt").write_text("Plain notes, now about armadillesque things.\n")
    again = await indexed.index(docs)
    assert (again.progress.stored, again.progress.unchanged) == (1, len(MARKERS) - 1)
    assert await indexed.keyword_urls("armadillesque") and not await indexed.keyword_urls(MARKERS["notes.txt"])


async def test_folder_source_id_override_and_filters(indexed: Indexed, allowed: Path, tmp_path: Path) -> None:
    docs = build_folder(allowed, outside=tmp_path / "outside")
    report = await indexed.index(docs, source_id="team-docs", exclude=("*.ipynb", "/sub/*"), max_pages=3)
    assert report.source_ids == {"team-docs"}
    assert report.progress.stored == 3
    assert not await indexed.keyword_urls(MARKERS["notebook.ipynb"])
    assert not await indexed.keyword_urls(MARKERS["component.mdx"])


@needs_git
async def test_git_repository_at_two_tags(indexed: Indexed, allowed: Path) -> None:
    repo, commits = build_repository(allowed)
    first = await indexed.index(repo, ref="v1")
    assert first.source_ids == {"widget-docs"} and first.progress.stored == 3, first.to_dict()
    intro = "git+" + file_url(repo) + "#/docs/intro.md"
    assert await indexed.keyword_urls("oldfeaturename") == [intro]
    assert not await indexed.keyword_urls("untrackeddraftword")  # tracked files only
    stored = indexed.store.get_page(intro)
    assert stored is not None and stored.etag == f"git:{commits['v1']}"  # the commit is recorded
    [source] = indexed.store.list_sources()
    assert source.summary.startswith("Widget docs")  # from the README at the top

    second = await indexed.index(repo, ref="v2")
    assert (second.progress.stored, second.progress.unchanged) == (1, 2)
    assert await indexed.keyword_urls("newfeaturename") == [intro]
    assert not await indexed.keyword_urls("oldfeaturename")
    stored = indexed.store.get_page(intro)
    assert stored is not None and stored.etag == f"git:{commits['v2']}"

    with pytest.raises(LocalAccessError, match="no branch, tag or commit 'v9'"):
        await indexed.index(repo, ref="v9")


@needs_git
async def test_git_file_url_clones_and_is_checked_against_allowed_paths(
    indexed: Indexed, allowed: Path, tmp_path: Path
) -> None:
    repo, _ = build_repository(allowed)
    report = await indexed.index("git+" + file_url(repo), source_id="cloned")
    assert report.source_ids == {"cloned"} and report.progress.stored == 3
    outside = tmp_path / "elsewhere"
    shutil.copytree(repo, outside)
    with pytest.raises(LocalAccessError, match="outside ALLOWED_PATHS"):
        await indexed.index("git+" + file_url(outside))


async def test_zip_and_tar_gz_archives(indexed: Indexed, allowed: Path) -> None:
    zipped = build_zip(allowed / "docs.zip", ARCHIVE_FILES)
    report = await indexed.index(zipped)
    assert report.source_ids == {"docs.zip"} and report.progress.stored == 2
    assert await indexed.keyword_urls("archivedzipword") == [file_url(zipped) + "#/guide/intro.md"]
    assert await indexed.keyword_urls("archivedhtmlword") == [file_url(zipped) + "#/guide/page.html"]

    files = {name: text.replace("archived", "tarred") for name, text in ARCHIVE_FILES.items()}
    tarred = build_tar_gz(allowed / "docs.tar.gz", files, links={"guide/evil.md": "/etc/passwd"})
    report = await indexed.index(tarred)
    assert report.source_ids == {"docs.tar.gz"} and report.progress.stored == 2
    assert await indexed.keyword_urls("tarredzipword") == [file_url(tarred) + "#/guide/intro.md"]
    [link] = report.skipped
    assert link.url.endswith("#/guide/evil.md") and "link" in link.reason and "not followed" in link.reason


async def test_zip_bomb_and_traversal_entries_refused_with_reasons(indexed: Indexed, allowed: Path) -> None:
    bomb = build_zip_bomb(allowed / "bomb.zip")
    report = await indexed.index(bomb)
    [refused] = report.skipped
    assert refused.url.endswith("#/bomb.md") and "ARCHIVE_MAX_RATIO" in refused.reason and "zip bomb" in refused.reason
    assert await indexed.keyword_urls("survivingzipword") and not await indexed.keyword_urls("bombword")

    traversal = build_zip(allowed / "traversal.zip", {"../../outside.md": "# Out\n\nescapedword\n", **ARCHIVE_FILES})
    report = await indexed.index(traversal)
    [refused] = report.skipped
    assert "path traversal" in refused.reason and "../../outside.md" in refused.reason
    assert not await indexed.keyword_urls("escapedword")
    assert report.progress.stored == 2
    assert not (allowed.parent / "outside.md").exists()


async def test_archive_limits_refuse_the_whole_archive(indexed: Indexed, allowed: Path) -> None:
    many = build_zip(allowed / "many.zip", {f"p{i}.md": f"# P{i}\n\nmanyfilesword {i}\n" for i in range(12)})
    settings = indexed.settings.model_copy(update={"archive_max_files": 10})
    small = Indexed(settings, indexed.embedder)
    report = await small.index(many)
    assert report.progress.stored == 0
    [failure] = report.failures
    assert "ARCHIVE_MAX_FILES" in failure.reason
    big = build_tar_gz(allowed / "big.tar.gz", {"a.md": "# A\n\n" + "x" * 4000, "b.md": "# B\n\n" + "y" * 4000})
    settings = indexed.settings.model_copy(update={"archive_max_bytes": 5000})
    report = await Indexed(settings, indexed.embedder).index(big)
    assert report.progress.stored == 1 and "ARCHIVE_MAX_BYTES" in report.failures[0].reason
    small.store.close()


async def test_pdf_pages_with_outline_headings(indexed: Indexed, allowed: Path) -> None:
    pdf = build_pdf(allowed / "manual.pdf")
    report = await indexed.index(pdf)
    assert report.source_ids == {"manual.pdf"} and report.progress.stored == 3, report.to_dict()
    url = file_url(pdf)
    assert await indexed.keyword_urls("pdfconfigword") == [url + "#page=2"]
    assert (await indexed.hybrid_urls("how do I install the widget?"))[0] == url + "#page=1"
    response = await indexed.search.search("pdftroubleword", mode="keyword")
    [hit] = response.results
    assert hit.url == url + "#page=3" and hit.headings == "## Configuration"  # continues under the last heading
    page = indexed.store.get_page(url + "#page=2")
    assert page is not None and page.title == "Widget Manual: Configuration"


async def test_openapi_spec_one_chunk_per_operation(indexed: Indexed, allowed: Path) -> None:
    spec = allowed / "petstore.yaml"
    spec.write_text(OPENAPI_YAML)
    report = await indexed.index(spec)
    assert report.progress.stored == 4, report.to_dict()  # the overview and three operations
    url = file_url(spec)
    [listing] = (await indexed.search.search("kennelword", mode="keyword")).results
    assert listing.url == url + "#operation=get:/pets"
    assert "GET /pets" in listing.content and "`limit` (query, integer (int32), optional)" in listing.content
    assert "array of Pet object {id: integer (int64) (required)" in listing.content
    [create] = (await indexed.search.search("adoptionword", mode="keyword")).results
    assert "Request body** (required)" in create.content and "species: string one of dog, cat" in create.content
    [delete] = (await indexed.search.search("farewellword", mode="keyword")).results
    assert (
        delete.url == url + "#operation=delete:/pets/{petId}" and "`petId` (path, string, required)" in delete.content
    )
    for hit in (listing, create, delete):
        page = indexed.store.get_page(hit.url)
        assert page is not None and page.chunk_count == 1
    assert await indexed.keyword_urls("petstoreapiword") == [url]


async def test_nothing_outside_allowed_paths(indexed: Indexed, allowed: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.md").write_text("# X\n\nforbiddenword\n")
    for target in (
        outside,
        allowed / ".." / "outside",
        file_url(outside / "x.md"),
        allowed / ".." / "outside" / "x.md",
    ):
        with pytest.raises(LocalAccessError, match="outside ALLOWED_PATHS"):
            await indexed.index(target)
    (allowed / "door").symlink_to(outside)
    with pytest.raises(LocalAccessError, match="outside ALLOWED_PATHS"):
        await indexed.index(allowed / "door")
    assert indexed.store.stats()["pages"] == 0
