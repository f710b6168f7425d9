"""A small docs corpus for answer-budget tests: eight topic pages, each with several sections and code."""

from __future__ import annotations

from pathlib import Path

TOPICS = ("caching", "logging", "routing", "storage", "security", "testing", "deployment", "streaming")
QUERY_WORDS = (
    "configure",
    "configuration option",
    "example",
    "timeout",
    "retry",
    "default value",
    "error handling",
    "install",
    "performance",
    "limits",
    "environment variable",
    "how do I",
    "troubleshooting",
    "upgrade",
    "best practice",
    "disable",
    "enable",
    "debug",
    "metrics",
    "command line",
)


def _section(topic: str, name: str, paragraphs: int) -> str:
    body = "".join(
        f"<p>The {topic} {name} configuration option number {index} sets how {topic} behaves when a request "
        f"arrives; its default value is {index * 10} and it can be changed with an environment variable. "
        f"Error handling, retry and timeout rules for {topic} apply here as well.</p>"
        for index in range(paragraphs)
    )
    code = (
        f"<pre><code class='language-python'>def configure_{topic}_{name}(settings):\n"
        f"    settings.{topic}_{name} = True\n    return settings\n</code></pre>"
    )
    return f"<h2>{topic.title()} {name}</h2>{body}{code}"


def write_corpus(root: Path) -> list[str]:
    """Write the pages and an index linking them; return the page paths."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, topic in enumerate(TOPICS):
        sections = "".join(
            _section(topic, name, 2 + (number + offset) % 4)
            for offset, name in enumerate(("setup", "options", "examples", "limits"))
        )
        page = f"<html><head><title>{topic.title()}</title></head><body><main><h1>{topic.title()} guide</h1>"
        (root / f"{topic}.html").write_text(f"{page}<p>How to configure {topic}.</p>{sections}</main></body></html>")
        paths.append(f"/{topic}.html")
    links = "".join(f'<li><a href="{path}">{path}</a></li>' for path in paths)
    (root / "index.html").write_text(f"<html><body><main><h1>Docs</h1><ul>{links}</ul></main></body></html>")
    return paths


def queries(count: int) -> list[str]:
    """`count` varied queries mixing topics and words."""
    return [
        f"{QUERY_WORDS[index % len(QUERY_WORDS)]} {TOPICS[(index // 3) % len(TOPICS)]}"
        if index % 4
        else QUERY_WORDS[index % len(QUERY_WORDS)]
        for index in range(count)
    ]
