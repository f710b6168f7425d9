"""Hostile arguments to the `crawlrag` command (typer's CliRunner on `crawlrag.cli.app`, in-process).

Only IP literals and refused schemes are used as URLs: the CLI has no resolver hook, and a host name would be
looked up in real DNS. No case loads the embedding model (searches use --mode keyword).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from indexed import IndexedSite, index_in
from security_helpers import content_digest
from typer.testing import CliRunner, Result

from crawlrag.cli import app

pytestmark = pytest.mark.hostile

Invoke = Callable[..., Result]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> IndexedSite:
    return index_in(tmp_path_factory.mktemp("cli"))


@pytest.fixture
def invoke(indexed: IndexedSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    """Run `crawlrag ARGS` against the indexed database; the content must be the same afterwards."""
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    env = {
        "DATABASE_URL": f"sqlite:///{indexed.db_path}",
        "ALLOW_PRIVATE_NETWORK": "false",
        "ALLOWED_HOSTS": "",
        "BROWSER": "never",
        "HF_HUB_OFFLINE": "1",
        "USE_RERANKING": "false",
    }
    before = content_digest(indexed.db_path)

    def run(*args: str, **extra_env: str) -> Result:
        return CliRunner().invoke(app, list(args), env={**env, **extra_env})

    yield run
    assert content_digest(indexed.db_path) == before, "a refused command changed the database"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("file:///etc/passwd", "ALLOWED_PATHS"),  # local files are readable only under ALLOWED_PATHS
        ("gopher://127.0.0.1:70/_x", "only http:// and https://"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[::ffff:127.0.0.1]:9/", "loopback, inside the IPv6 address"),
        ("http://2130706433:9/", "non-public address 127.0.0.1 (loopback)"),
        ("http://0x7f.1:9/", "non-public address 127.0.0.1 (loopback)"),
        ("http://0177.0.0.1:9/", "non-public address 127.0.0.1 (loopback)"),
        ("http://10.0.0.1/", "(private)"),
        ("http://admin:hunter2@127.0.0.1:9/", "credentials"),
        ("http://127.0.0.1:9/" + "a" * 3000, "the limit is 2048"),
        ("not a url at all", "no scheme"),
    ],
)
def test_crawl_refuses_hostile_urls(url: str, words: str, invoke: Invoke) -> None:
    result = invoke("crawl", url)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert words in " ".join(result.output.split())
    assert "hunter2" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("option", [["--max-depth", "-1"], ["--max-pages", "0"], ["--max-concurrent", "1000"]])
def test_crawl_refuses_out_of_range_options(option: list[str], invoke: Invoke) -> None:
    result = invoke("crawl", "http://10.0.0.1/", *option)
    assert result.exit_code in (1, 2)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["install", "--limit", "0"], "match_count must be between 1 and 50, got 0"),
        (["install", "--limit", "-1"], "match_count must be between 1 and 50, got -1"),
        (["install", "--limit", "1000000000"], "match_count must be between 1 and 50"),
        (["x" * 5000], "MAX_QUERY_CHARS"),
        (["   "], "non-empty"),
        (["install", "--mode", "drop-tables"], "--mode must be hybrid, vector or keyword"),
    ],
)
def test_search_refuses_bad_arguments(args: list[str], words: str, invoke: Invoke) -> None:
    result = invoke("search", *args)
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split())
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "query", ['"', "NEAR(pip install)", "'; DROP TABLE pages; --", "title:x AND -y *", "\x1b[2J\x1b[H"]
)
def test_search_treats_query_syntax_as_words(query: str, invoke: Invoke) -> None:
    result = invoke("search", query, "--mode", "keyword", "--json")
    assert result.exit_code == 0, result.output
    assert '"search_mode": "keyword"' in result.stdout


@pytest.mark.parametrize("source", ["' OR 1=1 --", "../../etc/passwd", "%"])
def test_search_with_unknown_source_is_refused(source: str, invoke: Invoke) -> None:
    result = invoke("search", "install", "--source", source, "--mode", "keyword")
    assert result.exit_code == 2 and "unknown source" in result.output


def test_printed_results_carry_no_terminal_escapes(invoke: Invoke) -> None:
    """Crawled text is printed to a terminal: control characters were removed when the page was stored."""
    result = invoke("search", "ignore previous instructions", "--mode", "keyword")
    assert result.exit_code == 0 and "IGNORE ALL PREVIOUS INSTRUCTIONS" in result.output
    assert "\x1b" not in result.output and "\x00" not in result.output


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("DATABASE_URL", "mysql://root@db/x", "DATABASE_URL"),
        ("ALLOWED_HOSTS", "http://evil.example/", "is not a host name"),
        ("CRAWL_TIMEOUT_SECONDS", "-1", "CRAWL_TIMEOUT_SECONDS"),
        ("MAX_RESPONSE_BYTES", "0", "MAX_RESPONSE_BYTES"),
        ("MAX_SITEMAP_DEPTH", "1000", "MAX_SITEMAP_DEPTH"),
        ("MAX_REDIRECTS", "-5", "MAX_REDIRECTS"),
    ],
)
def test_bad_settings_are_a_configuration_error(variable: str, value: str, words: str, invoke: Invoke) -> None:
    result = invoke("crawl", "http://10.0.0.1/", **{variable: value})
    assert result.exit_code == 2, result.output
    assert "Invalid configuration" in result.output and words in " ".join(result.output.split())
