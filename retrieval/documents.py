"""Documents and chunks, and reading them from a folder of markdown, text or JSONL.

A chunk is what retrieval ranks and what the prompt cites: an id stable across
rebuilds (`<doc id>#<section index>`), the article's title, its section heading, the
text, and the document's `last_modified`.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from pydantic import BaseModel, Field

TEXT_SUFFIXES = {".md", ".markdown", ".txt"}
_HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$")


class IngestError(ValueError):
    pass


class Section(BaseModel):
    heading: str = ""
    text: str


class Document(BaseModel):
    id: str = Field(min_length=1)
    title: str
    sections: list[Section]
    last_modified: datetime
    tags: list[str] = Field(default_factory=list)
    source: str = ""


class Chunk(BaseModel):
    id: str
    doc_id: str
    title: str
    section: str
    text: str
    last_modified: datetime
    tags: list[str] = Field(default_factory=list)

    @property
    def digest(self) -> str:
        """What the dense vector depends on: a changed digest means re-embedding."""
        return hashlib.sha256(f"{self.title}\n{self.section}\n{self.text}".encode()).hexdigest()

    def passage(self) -> str:
        """The text the encoders see: title and section give a short chunk its topic."""
        head = f"{self.title} — {self.section}" if self.section else self.title
        return f"{head}\n{self.text}"


def chunk_document(doc: Document, max_chars: int = 1200) -> list[Chunk]:
    """One chunk per section; a section longer than `max_chars` is split on paragraphs."""
    chunks: list[Chunk] = []
    for section in doc.sections:
        for piece in _pieces(section.text, max_chars):
            chunks.append(Chunk(
                id=f"{doc.id}#{len(chunks)}", doc_id=doc.id, title=doc.title, section=section.heading,
                text=piece, last_modified=doc.last_modified, tags=doc.tags,
            ))
    return chunks


def _pieces(text: str, max_chars: int) -> Iterator[str]:
    current = ""
    for paragraph in (p.strip() for p in re.split(r"\n\s*\n", text)):
        if not paragraph:
            continue
        if current and len(current) + len(paragraph) + 2 > max_chars:
            yield current
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        yield current


def read_folder(folder: Path) -> list[Document]:
    """Every .md/.txt file (one document each) and .jsonl file (one document per line)."""
    if not folder.is_dir():
        raise IngestError(f"{folder} is not a directory")
    docs: list[Document] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix in TEXT_SUFFIXES:
            docs.append(read_text(path, folder))
        elif path.suffix == ".jsonl":
            docs.extend(read_jsonl(path))
    ids = [d.id for d in docs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise IngestError(f"duplicate document ids: {', '.join(duplicates[:5])}")
    return docs


def read_text(path: Path, root: Path) -> Document:
    """Markdown headings become sections; the first `# ` heading (or the file name) is the title."""
    lines = path.read_text(encoding="utf-8").splitlines()
    title, sections, heading, body = "", [], "", []
    for line in lines:
        match = _HEADING.match(line)
        if match and len(match.group(1)) == 1 and not title:
            title = match.group(2)
            continue
        if match:
            _close(sections, heading, body)
            heading, body = match.group(2), []
        else:
            body.append(line)
    _close(sections, heading, body)
    doc_id = path.relative_to(root).with_suffix("").as_posix()
    modified = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    return Document(
        id=doc_id, title=title or path.stem.replace("_", " "), sections=sections,
        last_modified=modified, source=str(path),
    )


def _close(sections: list[Section], heading: str, body: list[str]) -> None:
    text = "\n".join(body).strip()
    if text:
        sections.append(Section(heading=heading, text=text))


def read_jsonl(path: Path) -> Iterator[Document]:
    """Lines of `{id, title, sections: [{heading, text}] | text, last_modified?, tags?}`."""
    modified = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if "text" in raw and "sections" not in raw:
                raw["sections"] = [{"heading": "", "text": raw.pop("text")}]
            raw.setdefault("last_modified", modified)
            raw.setdefault("source", f"{path}:{number}")
            yield Document.model_validate(raw)
        except (ValueError, TypeError) as exc:
            raise IngestError(f"{path}:{number}: {exc}") from exc
