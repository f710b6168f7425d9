"""Local sources made at test time: a docs folder, a git repository with two tags, archives, a PDF, a spec."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import zipfile
from pathlib import Path

from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

# One distinctive word per format, so a keyword search shows exactly which files were stored.
MARKERS = {
    "guide.md": "zanzibarite",
    "component.mdx": "quokkaphile",
    "reference.rst": "marmalizer",
    "page.html": "heliotropic",
    "notebook.ipynb": "fennecular",
    "notes.txt": "pangolinish",
}
IGNORED_MARKER = "gitignoredword"
HIDDEN_MARKER = "hiddenfolderword"
BUILD_MARKER = "buildoutputword"
OUTSIDE_MARKER = "outsiderootword"


def build_folder(root: Path, outside: Path) -> Path:
    """A docs folder with one file per format, an ignored file, hidden and build folders and a link outside."""
    docs = root / "handbook"
    (docs / "sub").mkdir(parents=True)
    (docs / "guide.md").write_text(f"# Guide\n\nThe {MARKERS['guide.md']} setting controls everything.\n")
    (docs / "sub" / "component.mdx").write_text(
        'import { Tabs } from "@site/tabs";\nexport const meta = { a: 1 };\n\n# Components\n\n'
        f'<Tabs groupId="os">\n  <TabItem value="linux">Run the {MARKERS["component.mdx"]} daemon.</TabItem>\n'
        '</Tabs>\n\n<Callout\n  kind="warn"\n/>\n\n```jsx\n<Keep>code stays</Keep>\n```\n'
    )
    (docs / "reference.rst").write_text(
        "Reference\n=========\n\nOptions\n-------\n\n"
        f"The :ref:`{MARKERS['reference.rst']} <anchor>` option is documented "
        "`here <https://example.com/>`_.\n\n.. code-block:: python\n\n   print('hi')\n"
    )
    (docs / "page.html").write_text(
        f"<html><head><title>HTML page</title></head><body><nav>menu</nav><main><h1>HTML page</h1>"
        f"<p>A {MARKERS['page.html']} paragraph.</p></main></body></html>"
    )
    notebook = {
        "cells": [
            {"cell_type": "markdown", "source": ["# Notebook\n", f"Explains {MARKERS['notebook.ipynb']} data."]},
            {"cell_type": "code", "source": "import math\nmath.sqrt(2)", "outputs": [{"text": "outputword"}]},
        ],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (docs / "notebook.ipynb").write_text(json.dumps(notebook))
    (docs / "notes.txt").write_text(f"Plain notes about {MARKERS['notes.txt']} things.\n")
    (docs / ".gitignore").write_text("secret*.md\n")
    (docs / "secret-plan.md").write_text(f"# Secret\n\n{IGNORED_MARKER}\n")
    (docs / ".hidden").mkdir()
    (docs / ".hidden" / "x.md").write_text(f"# Hidden\n\n{HIDDEN_MARKER}\n")
    (docs / "_build").mkdir()
    (docs / "_build" / "x.md").write_text(f"# Built\n\n{BUILD_MARKER}\n")
    (docs / "package.json").write_text('{"name": "not-a-spec"}')
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "private.md").write_text(f"# Private\n\n{OUTSIDE_MARKER}\n")
    (docs / "linked.md").symlink_to(outside / "private.md")
    return docs


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def build_repository(root: Path) -> tuple[Path, dict[str, str]]:
    """A repository with tags v1 and v2: intro.md changes between them, setup.md does not; one untracked file."""
    repo = root / "widget-docs"
    (repo / "docs").mkdir(parents=True)
    git(repo, "init", "--quiet")
    (repo / "docs" / "intro.md").write_text("# Intro\n\nVersion one talks about the oldfeaturename.\n")
    (repo / "docs" / "setup.md").write_text("# Setup\n\nInstall with the stablesetupword command.\n")
    (repo / "README.md").write_text("# Widget docs\n\nDocumentation of the widget.\n")
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "v1")
    git(repo, "tag", "v1")
    (repo / "docs" / "intro.md").write_text("# Intro\n\nVersion two talks about the newfeaturename.\n")
    git(repo, "commit", "--quiet", "-am", "v2")
    git(repo, "tag", "v2")
    (repo / "docs" / "draft.md").write_text("# Draft\n\nuntrackeddraftword\n")
    return repo, {tag: git(repo, "rev-parse", f"{tag}^{{commit}}") for tag in ("v1", "v2")}


ARCHIVE_FILES = {
    "guide/intro.md": "# Intro\n\nThe archivedzipword explains the guide.\n",
    "guide/page.html": "<html><body><main><h1>Page</h1><p>An archivedhtmlword paragraph.</p></main></body></html>",
}


def build_zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def build_tar_gz(path: Path, files: dict[str, str], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return path


def build_zip_bomb(path: Path) -> Path:
    """A small zip whose one markdown entry expands a thousandfold, plus a normal entry next to it."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.md", "# Bomb\n\nbombword " + "0" * 5_000_000)
        archive.writestr("fine.md", "# Fine\n\nThe survivingzipword entry.\n")
    return path


def build_pdf(path: Path) -> Path:
    """Three pages of text; the outline has "Installation" on page 1 and "Configuration" (under it) on page 2."""
    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    font_ref = writer._add_object(font)
    texts = [
        "Install the widget with the pdfinstallword tool.",
        "Configure the frobnicator dial with pdfconfigword.",
        "Troubleshooting the flux capacitor pdftroubleword.",
    ]
    for text in texts:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font_ref})}
        )
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode())
        page[NameObject("/Contents")] = writer._add_object(stream)
    top = writer.add_outline_item(title="Installation", page_number=0)
    writer.add_outline_item(title="Configuration", page_number=1, parent=top)
    writer.add_metadata({"/Title": "Widget Manual"})
    with path.open("wb") as handle:
        writer.write(handle)
    return path


OPENAPI_YAML = """\
openapi: 3.0.3
info:
  title: Pet Store
  version: "1.0"
  description: The petstoreapiword service.
paths:
  /pets:
    get:
      operationId: listPets
      summary: List all pets in the kennelword registry
      parameters:
        - name: limit
          in: query
          required: false
          schema: {type: integer, format: int32}
          description: How many pets to return
      responses:
        "200":
          description: A page of pets
          content:
            application/json:
              schema:
                type: array
                items: {$ref: "#/components/schemas/Pet"}
    post:
      operationId: createPet
      summary: Create a pet with an adoptionword form
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Pet"}
      responses:
        "201": {description: Created}
  /pets/{petId}:
    parameters:
      - {name: petId, in: path, required: true, schema: {type: string}}
    delete:
      summary: Remove a pet from the farewellword list
      responses:
        "204": {description: Removed}
components:
  schemas:
    Pet:
      type: object
      required: [id, name]
      properties:
        id: {type: integer, format: int64}
        name: {type: string}
        species: {type: string, enum: [dog, cat]}
"""
