"""Rewrite a page's content element so that any HTML-to-markdown converter renders its meaning faithfully.

Documentation generators mark up what matters in ways a generic converter mangles: Sphinx builds an API
signature from dozens of `<em>`/`<span>` pieces (`*` and `_` debris around `*args`), code blocks carry their
language on a wrapper `<div>` the converter never sees, and the anchor of a section sits on a `<section>`, on a
permalink or on an empty `<a name>` instead of on the heading. Here, in place on the lxml tree:

* API signatures (Sphinx `dt.sig`, Javadoc `.member-signature`, rustdoc `.item-decl` / `.code-header`) become
  one `<code>` of their plain text, followed by ` {#id}` when the signature has an anchor;
* code blocks become `<pre><code class="language-X">` of their text, X found on the block or its wrappers,
  and inline code wrapped across source lines is joined into one line;
* headings get ` {#anchor}` appended (attribute syntax that `crawlrag.chunking` reads and strips), and
  headings inside admonitions become bold paragraphs so they do not cut the page into false sections;
* spans (after hidden ones are dropped) and presentational attributes are removed, which halves the HTML the
  converter parses and keeps link titles out of the markdown.
"""

from __future__ import annotations

import re

import lxml.etree
import lxml.html

_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_LANGUAGE_CLASS = re.compile(r"^(?:language|lang|highlight)-([A-Za-z0-9_+#.-]+)$")
_NOT_LANGUAGES = frozenset({"default", "notranslate", "none", "text", "plain", "highlight", "source", "code"})
_SIGNATURE_CLASSES = frozenset({"sig", "member-signature", "item-decl", "code-header"})
_ADMONITION_CLASSES = frozenset({"admonition", "note", "warning", "tip", "important", "caution", "danger"})
# One pass over only these tags: lxml builds a Python object per element visited, which costs more than the
# rest of the preparation (and more than a CSS selector's XPath over every element).
_TAGS = ("a", "code", "dt", "div", "aside", "pre", *_HEADINGS)
_HIDDEN_SPANS = lxml.etree.XPath(".//span[@hidden or @aria-hidden='true' or contains(@style, 'display:none')]")
_NOISE_ATTRIBUTES = ("title", "style", "role", "aria-label", "aria-hidden", "target", "rel", "tabindex", "width")
_SPACE = re.compile(r"\s+")
_PERMALINK_TEXT = frozenset({"", "¶", "#", "§", "🔗", "link"})


def prepare_content(root: lxml.html.HtmlElement) -> None:
    """Normalise signatures, code blocks, admonitions and heading anchors of `root`, in place."""
    permalinks: list[lxml.html.HtmlElement] = []
    signatures: list[lxml.html.HtmlElement] = []
    admonitions: list[lxml.html.HtmlElement] = []
    blocks: list[lxml.html.HtmlElement] = []
    inline_code: list[lxml.html.HtmlElement] = []
    for element in root.iter(*_TAGS):
        tag, classes = element.tag, element.get("class", "").split()
        if tag == "code":
            inline_code.append(element)
        elif tag == "a":
            if element.get("href", "").startswith("#"):
                permalinks.append(element)
        elif tag == "pre":
            (signatures if "item-decl" in classes else blocks).append(element)
        elif _SIGNATURE_CLASSES.intersection(classes) and tag != "aside":
            signatures.append(element)
        elif tag in ("div", "aside") and _ADMONITION_CLASSES.intersection(classes):
            admonitions.append(element)
    _drop_permalinks(permalinks)
    for element in signatures:
        _flatten_signature(element)
    for pre in blocks:
        _normalise_code_block(pre)
    for admonition in admonitions:
        for heading in admonition.iter(*_HEADINGS):
            heading.tag = "p"
            _wrap_children(heading, "strong")
    for heading in root.iter(*_HEADINGS):
        anchor = heading_anchor(heading)
        if anchor and heading.text_content().strip():
            _append_text(heading, f" {{#{anchor}}}")
    # Spans and these attributes mean nothing in markdown; removing them (in C) leaves the converter half the
    # HTML to parse. Hidden spans go first, so that their text does not become visible.
    for hidden in _HIDDEN_SPANS(root):
        hidden.drop_tree()
    lxml.etree.strip_tags(root, "span")
    lxml.etree.strip_attributes(root, *_NOISE_ATTRIBUTES)
    for code in inline_code:
        _join_lines(code)


def heading_anchor(heading: lxml.html.HtmlElement) -> str:
    """The fragment that links to a heading: its id, its permalink's, an inner anchor's, or its section's."""
    if heading.get("id"):
        return str(heading.get("id"))
    for anchor in heading.iter("a"):
        name = anchor.get("id") or anchor.get("name")
        if name:
            return str(name)
    parent = heading.getparent()
    if parent is not None and parent.get("id") and _first_element_child(parent) is heading:
        return str(parent.get("id"))
    previous = heading.getprevious()  # Sphinx puts extra targets as `<span id=...>` just before the heading
    if previous is not None and previous.tag in ("span", "a") and previous.get("id") and not previous.text_content():
        return str(previous.get("id"))
    return ""


def _drop_permalinks(anchors: list[lxml.html.HtmlElement]) -> None:
    """Remove "¶"/"#" permalinks, keeping the fragment they link to as the heading's id when it has none."""
    for anchor in anchors:
        if anchor.text_content().strip().lower() in _PERMALINK_TEXT or "headerlink" in anchor.get("class", ""):
            holder = anchor.getparent()
            target = anchor.get("href", "")[1:]
            if holder is not None and holder.tag in _HEADINGS and target and not holder.get("id"):
                holder.set("id", target)
            anchor.drop_tree()


def _flatten_signature(element: lxml.html.HtmlElement) -> None:
    text = _SPACE.sub(" ", element.text_content()).strip()
    if not text:
        return
    anchor = element.get("id") or ""
    if not anchor:
        parent = element.getparent()
        if parent is not None and parent.get("id") and _first_element_child(parent) is element:
            anchor = str(parent.get("id"))
    _empty(element)
    if element.tag in _HEADINGS:
        code = lxml.html.Element("code")
        code.text = text
        element.append(code)
        if anchor:
            element.set("id", anchor)
        return
    # A signature is a term of its own, not a definition-list entry: a paragraph of code, then its description.
    if element.tag == "dt":
        element.tag = "p"
        description = element.getnext()
        if description is not None and description.tag == "dd":
            description.tag = "div"
        parent = element.getparent()
        if parent is not None and parent.tag == "dl":
            parent.tag = "div"
    else:
        element.tag = "p"
    code = lxml.html.Element("code")
    code.text = text
    code.tail = f" {{#{anchor}}}" if anchor else None
    element.append(code)


def _normalise_code_block(pre: lxml.html.HtmlElement) -> None:
    language = _code_language(pre)
    text = pre.text_content()
    _empty(pre)
    code = lxml.html.Element("code")
    code.text = text
    if language:
        code.set("class", f"language-{language}")
    pre.append(code)


def _code_language(pre: lxml.html.HtmlElement) -> str:
    candidates = [pre, *pre.iter("code")]
    ancestor = pre.getparent()
    for _ in range(3):  # Sphinx: div.highlight-python3 > div.highlight > pre; Material: div.language-py > pre
        if ancestor is None:
            break
        candidates.append(ancestor)
        ancestor = ancestor.getparent()
    for element in candidates:
        if element.get("data-lang"):
            return str(element.get("data-lang"))
        for name in element.get("class", "").split():
            match = _LANGUAGE_CLASS.match(name)
            if match and match.group(1).lower() not in _NOT_LANGUAGES:
                return match.group(1)
    return ""


def _join_lines(code: lxml.html.HtmlElement) -> None:
    """Inline code wrapped across source lines would come out as two code spans and a hard line break."""
    parent = code.getparent()
    if parent is None or parent.tag == "pre":
        return
    for element in code.iter():
        if element.text and "\n" in element.text:
            element.text = element.text.replace("\n", " ")
        if element is not code and element.tail and "\n" in element.tail:
            element.tail = element.tail.replace("\n", " ")


def _empty(element: lxml.html.HtmlElement) -> None:
    """Remove text, children and attributes, keeping the text that follows the element."""
    tail = element.tail
    element.clear()
    element.tail = tail


def _first_element_child(element: lxml.html.HtmlElement) -> lxml.html.HtmlElement | None:
    for child in element:
        if isinstance(child.tag, str) and not (child.tag in ("span", "a") and not child.text_content().strip()):
            return child
    return None


def _wrap_children(element: lxml.html.HtmlElement, tag: str) -> None:
    wrapper = lxml.html.Element(tag)
    wrapper.text, element.text = element.text, None
    for child in list(element):
        wrapper.append(child)
    element.append(wrapper)


def _append_text(element: lxml.html.HtmlElement, text: str) -> None:
    children = list(element)
    if children:
        last = children[-1]
        last.tail = (last.tail or "").rstrip() + text
    else:
        element.text = (element.text or "").rstrip() + text
