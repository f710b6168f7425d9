"""Markdown from the text formats that are not markdown already: MDX (JSX stripped), reStructuredText, notebooks.

The conversions keep the text and the heading structure (what chunking and search need), not every construct.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_MDX_STATEMENT = re.compile(r"^(import|export)\s")
_JSX_COMMENT = re.compile(r"\{/\*.*?\*/\}", re.DOTALL)
# A JSX element's tags (capitalised components, or HTML tags written in MDX), attributes possibly over lines.
# No overlapping quantifiers (the regexes here meet hostile files): each part stops at a character the next needs.
_JSX_TAG = re.compile(r"</?[A-Za-z][\w.:-]*(?:\s(?:[^<>{}]|\{[^{}]*\})*)?/?>")
_JSX_EXPRESSION = re.compile(r"^\s*\{[^{}]*\}\s*$")

# RST section adornments: a line of one repeated punctuation character under (and maybe over) the title.
_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+_:.<>])\1{2,}\s*$")
_RST_LINK = re.compile(r"`([^`<]+)<([^`>]+)>`__?")
_RST_ROLE = re.compile(r":[\w:+-]+:`(?:([^`<]+)<[^`>]+>|([^`]+))`")
_RST_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+([\w:-]+)::\s*(.*)$")
_RST_COMMENT = re.compile(r"^\.\.(\s|$)")
_CODE_DIRECTIVES = frozenset({"code", "code-block", "sourcecode", "literalinclude"})


def mdx_to_markdown(text: str) -> str:
    """MDX without its JavaScript: import/export lines, JSX comments, expressions and tags go, their text stays."""
    out: list[str] = []
    fence: str | None = None
    prose: list[str] = []

    def flush() -> None:
        if prose:
            block = _JSX_TAG.sub("", _JSX_COMMENT.sub("", "\n".join(prose)))
            out.extend(line for line in block.split("\n") if not _JSX_EXPRESSION.match(line))
            prose.clear()

    for line in text.split("\n"):
        marker = _FENCE.match(line)
        if fence is not None:
            out.append(line)
            if marker and marker.group(1)[0] == fence[0] and len(marker.group(1)) >= len(fence):
                fence = None
            continue
        if marker:
            flush()
            fence = marker.group(1)
            out.append(line)
        elif not _MDX_STATEMENT.match(line):
            prose.append(line)
    flush()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in out)).strip()


def rst_to_markdown(text: str) -> str:
    """Headings by adornment (levels in order of first use), code directives and `::` blocks fenced, links and
    roles reduced to their text; other directives keep their content."""
    lines = text.replace("\r\n", "\n").split("\n")
    levels: list[str] = []
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        over = _ADORNMENT.match(line)
        # Overlined title: adornment, title, adornment.
        if over and i + 2 < len(lines) and lines[i + 1].strip() and _ADORNMENT.match(lines[i + 2]):
            out.append(_heading(lines[i + 1].strip(), "o" + over.group(1), levels))
            i += 3
            continue
        under = _ADORNMENT.match(nxt)
        if line.strip() and not over and under and len(nxt.strip()) >= len(line.strip()) and not line.startswith(" "):
            out.append(_heading(line.strip(), under.group(1), levels))
            i += 2
            continue
        directive = _RST_DIRECTIVE.match(line)
        if directive and directive.group(2) in _CODE_DIRECTIVES:
            body, i = _indented_block(lines, i + 1)
            out += [f"```{directive.group(3).strip()}", *body, "```"]
            continue
        if directive:
            name, argument = directive.group(2), directive.group(3).strip()
            if name not in {"toctree", "image", "figure", "include", "raw", "only", "index", "meta"}:
                label = f"**{name.capitalize()}:** {argument}".strip() if name not in {"rubric"} else argument
                out.append(label)
            body, i = _indented_block(lines, i + 1)
            if name not in {"toctree", "raw", "index", "meta"}:
                out += [b.strip() for b in body]
            continue
        if _RST_COMMENT.match(line):
            _, i = _indented_block(lines, i + 1)
            continue
        if line.rstrip().endswith("::"):
            prefix = line.rstrip()[:-2].rstrip()
            out.append(prefix + (":" if prefix and not prefix.endswith(":") else ""))
            body, i = _indented_block(lines, i + 1)
            out += ["```", *body, "```"]
            continue
        out.append(_inline(line))
        i += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def _heading(title: str, style: str, levels: list[str]) -> str:
    if style not in levels:
        levels.append(style)
    return "#" * min(levels.index(style) + 1, 6) + " " + _inline(title)


def _inline(line: str) -> str:
    line = _RST_LINK.sub(lambda m: f"[{m.group(1).strip()}]({m.group(2)})", line)
    line = _RST_ROLE.sub(lambda m: f"`{(m.group(1) or m.group(2)).strip()}`", line)
    return line.replace("``", "`")


def _indented_block(lines: list[str], start: int) -> tuple[list[str], int]:
    """The indented lines from `start` (options like `:linenos:` dropped), dedented, and the index after them."""
    i = start
    body: list[str] = []
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
        body.append(lines[i])
        i += 1
    content = [line for line in body if not re.match(r"^\s+:[\w-]+:", line)]
    while content and not content[0].strip():
        content.pop(0)
    indent = min((len(line) - len(line.lstrip()) for line in content if line.strip()), default=0)
    while content and not content[-1].strip():
        content.pop()
    return [line[indent:] for line in content], i


def notebook_to_markdown(data: bytes) -> str:
    """A Jupyter notebook's markdown cells as they are and its code cells fenced (outputs are left out)."""
    notebook: Any = json.loads(data.decode("utf-8-sig"))
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError("not a Jupyter notebook (no cells)")
    metadata = notebook.get("metadata")
    info = (metadata.get("language_info") or metadata.get("kernelspec") or {}) if isinstance(metadata, dict) else {}
    language = str(info.get("name") or info.get("language") or "") if isinstance(info, dict) else ""
    parts = []
    for cell in notebook["cells"]:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        if not text.strip():
            continue
        if cell.get("cell_type") == "markdown":
            parts.append(text.strip())
        elif cell.get("cell_type") == "code":
            parts.append(f"```{language}\n{text.rstrip()}\n```")
    return "\n\n".join(parts)
