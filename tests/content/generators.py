"""Small documentation sites built at test time by real generators (Sphinx, MkDocs Material), and DocBook pages.

    root = build_sphinx_site(tmp_path)    # HTML in root (index.html, api.html, guide.html, changes.html, ...)
    root = build_mkdocs_site(tmp_path)    # HTML in root (index.html, guide/index.html, changelog/index.html)
    root = write_docbook_pages(tmp_path)  # hand-written DocBook-style HTML (reference, index, note)

The sources hold the identifiers and signatures the fidelity tests look for (SIGNATURES, IDENTIFIERS) and a
chrome marker in the navigation and footer of every generated page (CHROME_MARKERS).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Exactly as a reader of the rendered page sees them.
SPHINX_SIGNATURES = (
    "class shapes.Widget(name, *args, size=3, **kwargs)",
    "__init__(self[, ...])",
    "resize(width: int, height: int = 10) → None",
    "shapes.make_widget(name: str, **options) → Widget",
)
IDENTIFIERS = ("__init__", "*args", "**kwargs", "_private", "a_b_c", "Box<T>")
CHROME_MARKERS = ("NAVMARKER", "FOOTMARKER")

_SPHINX_CONF = """
project = "Shapes"
extensions = []
html_theme = "alabaster"
html_theme_options = {"description": "NAVMARKER sidebar"}
html_show_sourcelink = False
copyright = "FOOTMARKER"
"""

_SPHINX_PAGES = {
    "index.rst": """
        Shapes
        ======

        Shapes draws widgets. This start page says what the project is about in a few sentences of prose.

        .. toctree::

           guide
           api
           changes

        Indices and tables
        ------------------

        * :ref:`genindex`
        * :ref:`modindex`
        * :ref:`search`
        """,
    "api.rst": """
        API reference
        =============

        .. py:module:: shapes

        .. py:class:: Widget(name, *args, size=3, **kwargs)

           A widget with a name. The ``_private`` attribute and the ``a_b_c`` helper are internal; generic
           containers are written ``Box<T>``.

           .. py:method:: __init__(self[, ...])

              Initialise the widget with the arguments given to the constructor.

           .. py:method:: resize(width: int, height: int = 10) -> None

              Resize the widget to *width* and *height* pixels.

        .. py:function:: make_widget(name: str, **options) -> Widget

           Build a widget from options, passing ``*args`` and ``**kwargs`` on.

        .. note::

           Widgets are not thread-safe: share them between threads only behind a lock.

        .. admonition:: Sizing rules

           Sizes are in pixels and must be positive.
        """,
    "guide.rst": """
        User guide
        ==========

        Installing
        ----------

        Install the package with pip, then import it. This paragraph has enough words to count as prose.

        .. code-block:: python

           from shapes import Widget
           widget = Widget("a", size=4)

        Options
        -------

        .. list-table::
           :header-rows: 1

           * - Option
             - Default
           * - size
             - 3
           * - colour
             - red

        Glossary
        --------

        .. glossary::

           widget
              A thing drawn on the screen.

           gadget
              A thing that does something useful.
        """,
    "changes.rst": """
        Changelog
        =========

        1.2.0
        -----

        Widgets can be resized.

        1.1.0
        -----

        Widgets have names.

        1.0.0
        -----

        First release.
        """,
}

_MKDOCS_CONFIG = """
site_name: Gizmo Docs
copyright: FOOTMARKER
theme:
  name: material
plugins: []
markdown_extensions:
  - admonition
  - def_list
  - tables
  - attr_list
  - pymdownx.highlight:
      pygments_lang_class: true
  - pymdownx.superfences
  - toc:
      permalink: true
nav:
  - NAVMARKER Home: index.md
  - NAVMARKER Guide: guide.md
  - NAVMARKER News: changelog.md
"""

_MKDOCS_PAGES = {
    "index.md": """
        # Gizmo

        Gizmo counts things. This start page says what the project is about in a few sentences of prose.
        """,
    "guide.md": """
        # Guide

        ## Installation

        Install it with pip. Call `Gizmo.__init__` with `*args` and `**kwargs`; `_private` and `a_b_c` are
        internal, and `Box<T>` is generic.

        ```python
        from gizmo import Gizmo
        counter = Gizmo(start=1)
        ```

        !!! warning "Mind the gap"

            Counting starts at one.

        ## Settings

        | Setting | Default |
        |---------|---------|
        | start   | 1       |
        | step    | 2       |

        Counter
        :   Something that counts.
        """,
    "changelog.md": """
        # Release notes

        ## 2.1.0

        Faster counting.

        ## 2.0.0

        Counting from one.

        ## 1.0.0

        First release.
        """,
}

DOCBOOK_SIGNATURES = (
    "public static <T> List<T> singletonList(T o)",
    "pub fn new<T>(value: T) -> Box<T>",
    "int sqlite3_open(const char *filename, sqlite3 **ppDb);",
)

_DOCBOOK_PAGES = {
    "reference.html": """<!DOCTYPE html>
        <html><head><title>Chapter 3. Reference</title></head><body>
        <div class="navheader">NAVMARKER <a href="index.html">Index</a></div>
        <div class="chapter"><div class="titlepage"><h1 class="title"><a name="ref"></a>Chapter 3. Reference</h1></div>
        <p>This chapter documents the functions of the library in enough words to be prose, with examples.</p>
        <div class="section"><h2 class="title"><a name="open"></a>Opening a database</h2>
        <pre class="funcsynopsis">int sqlite3_open(const char *filename, sqlite3 **ppDb);</pre>
        <p>Opens the database <code class="varname">filename</code>; the handle is written to
        <code class="varname">*ppDb</code>.</p>
        <div class="note"><h3 class="title">Note</h3><p>The file is created when it does not exist.</p></div>
        <div class="variablelist"><dl>
        <dt><span class="term"><code>SQLITE_OK</code></span></dt><dd><p>The call succeeded.</p></dd>
        <dt><span class="term"><code>SQLITE_BUSY</code></span></dt><dd><p>The database is locked.</p></dd>
        </dl></div>
        </div>
        <div class="section"><h2 class="title"><a name="java"></a>Java-style members</h2>
        <div class="member-signature"><span class="modifiers">public static</span>&nbsp;<span
        class="type-parameters">&lt;T&gt;</span>&nbsp;<span class="return-type">List&lt;T&gt;</span>&nbsp;<span
        class="element-name">singletonList</span><wbr><span class="parameters">(T&nbsp;o)</span></div>
        <p>Returns an immutable list containing only the specified object.</p>
        <pre class="rust item-decl"><code>pub fn <a class="fn">new</a>&lt;T&gt;(value: T) -&gt; Box&lt;T&gt;</code>
        </pre>
        <p>Allocates memory on the heap and then places the value into it.</p>
        </div></div>
        <div class="navfooter">FOOTMARKER</div>
        </body></html>""",
    "ix01.html": """<!DOCTYPE html>
        <html><head><title>Index</title></head><body>
        <div class="index"><div class="titlepage"><h1 class="title"><a name="idx"></a>Index</h1></div>
        <div class="indexdiv"><h3>B</h3><dl>
        <dt>busy handler, <a href="reference.html#open">Opening a database</a></dt>
        <dt>busy timeout, <a href="reference.html#open">Opening a database</a></dt>
        </dl></div>
        <div class="indexdiv"><h3>O</h3><dl>
        <dt>open, <a href="reference.html#open">Opening a database</a></dt>
        <dt>open flags, <a href="reference.html#open">Opening a database</a></dt>
        <dt>OK status, <a href="reference.html#open">Opening a database</a></dt>
        </dl></div>
        <div class="indexdiv"><h3>S</h3><dl>
        <dt>singletonList, <a href="reference.html#java">Java-style members</a></dt>
        <dt>SQLITE_BUSY, <a href="reference.html#open">Opening a database</a></dt>
        <dt>SQLITE_OK, <a href="reference.html#open">Opening a database</a></dt>
        <dt>sqlite3_open, <a href="reference.html#open">Opening a database</a></dt>
        <dt>status codes, <a href="reference.html#open">Opening a database</a></dt>
        <dt>synopsis, <a href="reference.html#open">Opening a database</a></dt>
        </dl></div></div>
        </body></html>""",
    "announce.html": """<!DOCTYPE html>
        <html><head><title>Announcing Shapes 4.3</title></head><body><article>
        <h1>Announcing Shapes 4.3</h1>
        <p>Shapes 4.3 is out, with faster widgets and a new resize method that many of you asked for.</p>
        </article></body></html>""",
}


def build_sphinx_site(root: Path) -> Path:
    """Build the Sphinx project with the installed Sphinx; returns the folder of the HTML."""
    source, out = root / "src", root / "html"
    source.mkdir(parents=True)
    (source / "conf.py").write_text(_SPHINX_CONF)
    for name, text in _SPHINX_PAGES.items():
        (source / name).write_text(textwrap.dedent(text).lstrip())
    _run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(source), str(out)])
    return out


def build_mkdocs_site(root: Path) -> Path:
    """Build the MkDocs Material project; returns the folder of the HTML."""
    docs, out = root / "docs", root / "site"
    docs.mkdir(parents=True)
    (root / "mkdocs.yml").write_text(_MKDOCS_CONFIG)
    for name, text in _MKDOCS_PAGES.items():
        (docs / name).write_text(textwrap.dedent(text).lstrip())
    _run([sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(root / "mkdocs.yml"), "-d", str(out)])
    return out


def write_docbook_pages(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in _DOCBOOK_PAGES.items():
        (root / name).write_text(textwrap.dedent(text))
    return root


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
