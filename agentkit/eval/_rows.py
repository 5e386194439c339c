"""Reading dataset files into (line, record) rows, and the helpers parsers use to check a row.

The readers keep the 1-based line each record starts on, so any error -- bad JSON, a missing field,
an unknown label -- names the file, the line and the field; that is what makes a 5,000-row gold
file fixable. ``DatasetError`` lives here, below the parsers and the registry, so both can raise it
without an import loop; ``agentkit.eval.datasets`` re-exports it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from agentkit.errors import ConfigError


class DatasetError(ConfigError):
    """A dataset file or row is unusable; the message names the file, the 1-based line and the field."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.field = field


# --------------------------------------------------------------------------- row readers

_Source = Path | Traversable
Row = tuple[int, dict[str, Any]]  # (1-based line where the record starts, the decoded JSON object)


def row_error(src: str, line: int, problem: str, fix: str, field: str | None = None) -> DatasetError:
    where = f"field '{field}': " if field else ""
    return DatasetError(f"{src}:{line}: {where}{problem}. {fix}", path=src, line=line, field=field)


def _read_jsonl(source: _Source, src: str) -> Iterator[tuple[int, Any]]:
    """Stream a JSONL file so ``limit`` stops reading early; blank lines are allowed (editors add them)."""
    # Bytes, decoded line by line: text mode decodes in 8 KB chunks, so a bad byte would be blamed
    # on the wrong line.
    with source.open("rb") as fh:
        for line_no, raw_bytes in enumerate(fh, start=1):
            if line_no == 1 and raw_bytes.startswith(b"\xef\xbb\xbf"):  # a BOM from Windows editors
                raw_bytes = raw_bytes[3:]
            try:
                raw = raw_bytes.decode("utf-8")
            except UnicodeDecodeError:
                raise row_error(src, line_no, "not UTF-8 text", "Re-save the file as UTF-8") from None
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise row_error(
                    src, line_no, f"not valid JSON ({exc.msg} at column {exc.colno})",
                    f"Fix or delete line {line_no}; each line must be one JSON object",
                ) from None
            yield line_no, value


def _read_json_array(source: _Source, src: str) -> Iterator[tuple[int, Any]]:
    """Decode a JSON array element by element so each record keeps the line it starts on."""
    try:
        text = source.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(f"{src}: not UTF-8 text. Re-save the file as UTF-8", path=src) from None
    decoder = json.JSONDecoder()
    ws = re.compile(r"\s*")
    counted_to, line_at = 0, 1  # newlines are counted incrementally: one pass over the text in total

    def line_of(pos: int) -> int:
        nonlocal counted_to, line_at
        line_at += text.count("\n", counted_to, pos)
        counted_to = pos
        return line_at

    def fail(pos: int, problem: str) -> DatasetError:
        line = text.count("\n", 0, pos) + 1
        fix = f"Fix the JSON near line {line}; the file must be one JSON array of objects"
        return row_error(src, line, problem, fix)

    pos = ws.match(text, 0).end()  # type: ignore[union-attr]
    if not text.startswith("[", pos):
        raise fail(pos, "expected a JSON array ('[') at the top level")
    pos = ws.match(text, pos + 1).end()  # type: ignore[union-attr]
    if text.startswith("]", pos):
        return
    while True:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise fail(exc.pos, f"not valid JSON ({exc.msg})") from None
        yield line_of(pos), value
        pos = ws.match(text, end).end()  # type: ignore[union-attr]
        if text.startswith(",", pos):
            pos = ws.match(text, pos + 1).end()  # type: ignore[union-attr]
        elif text.startswith("]", pos):
            return
        else:
            raise fail(pos, "expected ',' or ']' between records")


def read_rows(source: _Source, src: str) -> Iterator[Row]:
    """The records of a JSONL file, or of a JSON array when ``src`` ends in ``.json``."""
    reader = _read_json_array if src.lower().endswith(".json") else _read_jsonl
    for line, value in reader(source, src):
        if not isinstance(value, dict):
            raise row_error(src, line, f"expected a JSON object, got {type(value).__name__}",
                            "Each record must be an object of field: value pairs")
        yield line, value


# --------------------------------------------------------------------------- field helpers


@dataclass(frozen=True)
class Ctx:
    """Where a row came from, so every helper can name it in an error."""

    src: str
    line: int
    custom: bool = False  # a user's file: point at field_map, their keys may just be named differently

    def missing(self, key: str) -> DatasetError:
        fix = f"Add '{key}' to this row or delete the row"
        if self.custom:
            fix += ", or name the file's own key with field_map (e.g. field_map={'label': 'gold'})"
        return row_error(self.src, self.line, "missing", fix, key)

    def bad(self, key: str, problem: str, fix: str = "Correct the row or delete it") -> DatasetError:
        return row_error(self.src, self.line, problem, fix, key)


def get(row: Mapping[str, Any], key: str, ctx: Ctx) -> Any:
    if key not in row or row[key] is None:
        raise ctx.missing(key)
    return row[key]


def get_str(row: Mapping[str, Any], key: str, ctx: Ctx) -> str:
    value = get(row, key, ctx)
    if not isinstance(value, str):
        raise ctx.bad(key, f"expected a string, got {type(value).__name__}")
    return value


def get_str_list(row: Mapping[str, Any], key: str, ctx: Ctx) -> list[str]:
    value = get(row, key, ctx)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ctx.bad(key, "expected a list of strings")
    return list(value)


def unknown_label(ctx: Ctx, key: str, value: Any, allowed: Iterable[str]) -> DatasetError:
    return ctx.bad(key, f"unknown label {value!r}; expected one of {', '.join(sorted(allowed))}")
