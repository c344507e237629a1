"""Reading new articles for inference: a folder of .txt files, a .jsonl or a .csv file.

Documents come out of a generator, one at a time, so a large input is never held in
memory. Bytes are decoded as UTF-8: an invalid byte is an error naming the file, the
line and the byte offset, unless ``encoding_errors="replace"``, which decodes with
U+FFFD replacement characters, logs a warning and flags the document
(``encoding_replaced``) so the output says so.

* a single ``.txt`` file is one document;
* folder: every ``*.txt`` (sorted by name) is one document, ``doc_id`` its file stem; an
  optional ``metadata.json`` beside them (a list of ``{"id", "title", "date"}`` objects,
  as in ``seeds/``) supplies titles and dates.
* ``.jsonl``: one object per line with a ``text`` field; optional ``doc_id``, ``date``,
  ``title`` (``doc_id`` defaults to ``<file stem>-<line>``).
* ``.csv``: a header row with a ``text`` column; optional ``doc_id``, ``date``, ``title``
  columns (``doc_id`` defaults to ``<file stem>-<row>``).
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.data.corpus import json_error

log = logging.getLogger(__name__)

EncodingErrors = Literal["strict", "replace"]
SUFFIXES = (".jsonl", ".csv")


class InputFileError(ValueError):
    """An input file that cannot be read as documents. The message names file, line, byte."""


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str
    date: str | None = None
    title: str | None = None
    source: str = ""
    encoding_replaced: bool = False


def _decode(data: bytes, where: str, offset: int, errors: EncodingErrors) -> tuple[str, bool]:
    """UTF-8 text of ``data`` and whether bytes were replaced; ``offset`` is where ``data`` starts."""
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError as exc:
        at = offset + exc.start
        if errors != "replace":
            raise InputFileError(
                f"{where}: byte {at}: not valid UTF-8 ({exc.reason}, byte 0x{data[exc.start]:02x}); "
                "expected UTF-8 text: convert the file, or pass --encoding-errors replace"
            ) from None
        log.warning("%s: byte %d: invalid UTF-8 replaced by U+FFFD (--encoding-errors replace)", where, at)
        return data.decode("utf-8", errors="replace"), True


def _lines(path: Path, errors: EncodingErrors, replaced: set[int]) -> Iterator[str]:
    """Decoded lines (ends kept), read lazily; line numbers with replaced bytes go into ``replaced``."""
    offset = 0
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw, offset = raw[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
            line, was_replaced = _decode(raw, f"{path}:{number}", offset, errors)
            if was_replaced:
                replaced.add(number)
            offset += len(raw)
            yield line


def _optional(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _read_txt(path: Path, errors: EncodingErrors, info: dict | None = None) -> Document:
    """One .txt file as one document (a UTF-8 byte-order mark is skipped)."""
    data = path.read_bytes()
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    text, replaced = _decode(data[bom:], str(path), bom, errors)
    if not text.strip():
        log.warning("%s is empty: no sentences", path)
    info = info or {}
    return Document(path.stem, text, _optional(info.get("date")), _optional(info.get("title")), str(path), replaced)


def read_folder(folder: Path, errors: EncodingErrors = "strict") -> Iterator[Document]:
    """One document per ``*.txt`` file, with titles and dates from ``metadata.json`` if present."""
    files = sorted(folder.glob("*.txt"))
    if not files:
        log.warning("%s holds no .txt files: no documents", folder)
    meta: dict[str, dict] = {}
    meta_path = folder / "metadata.json"
    if meta_path.is_file():
        try:
            meta = {str(e["id"]): e for e in json.loads(meta_path.read_text(encoding="utf-8"))}
        except (ValueError, KeyError, TypeError) as exc:
            raise InputFileError(f"{meta_path}: expected a JSON list of objects with an 'id': {exc}") from None
    for path in files:
        yield _read_txt(path, errors, meta.get(path.stem))


def read_jsonl(path: Path, errors: EncodingErrors = "strict") -> Iterator[Document]:
    """One document per JSON line (``text`` required; ``doc_id``, ``date``, ``title`` optional)."""
    replaced: set[int] = set()
    n = 0
    for number, line in enumerate(_lines(path, errors, replaced), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFileError(f"{path}:{number}: {json_error(exc)}; expected one object per line") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            found = type(obj.get("text")).__name__ if isinstance(obj, dict) and "text" in obj else "no 'text'"
            raise InputFileError(f"{path}:{number}: expected an object with a string 'text' field, found {found}")
        n += 1
        yield Document(
            _optional(obj.get("doc_id")) or f"{path.stem}-{number}",
            obj["text"],
            _optional(obj.get("date")),
            _optional(obj.get("title")),
            f"{path}:{number}",
            number in replaced,
        )
    if n == 0:
        log.warning("%s is empty: no documents", path)


def read_csv(path: Path, errors: EncodingErrors = "strict") -> Iterator[Document]:
    """One document per CSV row under a header with a ``text`` column."""
    replaced: set[int] = set()
    reader = csv.DictReader(_lines(path, errors, replaced))  # csv handles quoted fields across lines
    n = 0
    last_line = 1
    for row in reader:
        first_line, last_line = last_line + 1, reader.line_num
        if reader.fieldnames is None or "text" not in reader.fieldnames:
            raise InputFileError(f"{path}:1: expected a header with a 'text' column, found {reader.fieldnames}")
        if None in row:  # DictReader puts the cells beyond the header under None
            raise InputFileError(
                f"{path}:{first_line}: {len(reader.fieldnames) + len(row[None])} cells under "
                f"a header of {len(reader.fieldnames)}"
            )
        n += 1
        yield Document(
            _optional(row.get("doc_id")) or f"{path.stem}-{n}",
            row["text"] or "",
            _optional(row.get("date")),
            _optional(row.get("title")),
            f"{path}:{first_line}",
            any(line in replaced for line in range(first_line, last_line + 1)),
        )
    if n == 0:
        if reader.fieldnames is not None and "text" not in reader.fieldnames:
            raise InputFileError(f"{path}:1: expected a header with a 'text' column, found {reader.fieldnames}")
        log.warning("%s is empty: no documents", path)


def read_documents(path: str | Path, encoding_errors: EncodingErrors = "strict") -> Iterator[Document]:
    """Documents of a folder of .txt files, a .jsonl or a .csv file, lazily (see the module docstring)."""
    path = Path(path)
    if encoding_errors not in ("strict", "replace"):
        raise ValueError(f"encoding_errors must be 'strict' or 'replace', found {encoding_errors!r}")
    if path.is_dir():
        return read_folder(path, encoding_errors)
    if not path.exists():
        raise InputFileError(f"{path}: no such file or folder; expected a folder of .txt files, a .jsonl or a .csv")
    if path.suffix.lower() == ".jsonl":
        return read_jsonl(path, encoding_errors)
    if path.suffix.lower() == ".csv":
        return read_csv(path, encoding_errors)
    if path.suffix.lower() == ".txt":
        return iter([_read_txt(path, encoding_errors)])
    raise InputFileError(
        f"{path}: unknown input type {path.suffix!r}; expected a folder of .txt files, a .jsonl or a .csv"
    )
