"""How a file is to be read: the options a user may give, and the defaults when they do not.

Every edge hands the user's words over as strings (`ReadOptions.parse`), so what a valid
delimiter or type name is, and what the defaults are, is decided here once.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass, field
from typing import Mapping

import pyarrow as pa

from lakehouse.errors import InvalidInput
from lakehouse.formats.types import parse_type

__all__ = ["ReadOptions", "DEFAULT_NULL_MARKERS", "DELIMITERS"]

DEFAULT_NULL_MARKERS = ("NA", "N/A", "n/a", "#N/A", "#NA", "<NA>", "NULL", "null", "NaN", "nan", "-NaN", "-nan", "None")
"""What spreadsheets, R, pandas and databases write for a missing value. By default they are
NULL in columns that are otherwise typed (numbers, booleans, times); a text column keeps them
as written, since "NA" is also Namibia and "null" may be a word. `null_values=` given by the
user applies to every column."""

DELIMITERS = (",", "\t", ";", "|")
"""The delimiters sniffed, in order of preference when two fit equally."""

_ESCAPES = {"\\t": "\t", "tab": "\t", "\\\\": "\\"}
MAX_NAMES = 10_000


@dataclass(frozen=True)
class ReadOptions:
    """A file's dialect and the user's declarations; every field optional."""

    null_values: tuple[str, ...] | None = None
    """None: `DEFAULT_NULL_MARKERS`, in typed columns only. Given: these, in every column (an
    empty tuple: none). The empty unquoted field is NULL either way, "" quoted is the empty string."""
    delimiter: str | None = None
    """None: sniffed from the header and first rows among `DELIMITERS`."""
    quote: str | None = '"'
    """None: no quoting at all."""
    escape: str | None = None
    header: bool = True
    names: tuple[str, ...] | None = None
    """Column names: for a file without a header (else column0, column1...), or renaming one."""
    types: Mapping[str, pa.DataType] = field(default_factory=dict)
    """Column -> type, instead of inference; a value that does not fit fails the ingest."""
    date_format: str | None = None
    """A strptime format (`%d/%m/%Y`, `%m/%d/%Y %H:%M`) for dates and times in other layouts."""
    decimal: str | None = None
    """"." or ","; None: "," for a ";"-delimited file (the European convention), else "."."""
    encoding: str | None = None
    """A text encoding (latin-1, cp1252, utf-16...); None: UTF-8, or UTF-16 by its BOM."""

    @classmethod
    def parse(cls, values: Mapping[str, str | None]) -> "ReadOptions":
        """Options from their text form (query parameters, CLI options, Flight path options).

        Unset or None values keep their defaults; an invalid one is an `InvalidInput` naming it.
        """
        v = {k: s for k, s in values.items() if s is not None}
        return cls(
            null_values=_list(v["null_values"]) if "null_values" in v else None,
            delimiter=_char(v["delimiter"], "delimiter") if "delimiter" in v else None,
            quote=(_char(v["quote"], "quote") if v["quote"] else None) if "quote" in v else '"',
            escape=_char(v["escape"], "escape") if v.get("escape") else None,
            header=_bool(v["header"], "header") if "header" in v else True,
            names=_names(v["names"]) if "names" in v else None,
            types=_types(v["types"]) if "types" in v else {},
            date_format=_date_format(v["date_format"]) if v.get("date_format") else None,
            decimal=_decimal(v["decimal"]) if v.get("decimal") else None,
            encoding=_encoding(v["encoding"]) if v.get("encoding") else None,
        )

    def text_options_given(self) -> list[str]:
        """The options that only mean something for a text format such as CSV."""
        default = ReadOptions()
        return [
            name
            for name in ("null_values", "delimiter", "quote", "escape", "header", "names", "types", "date_format", "decimal")
            if getattr(self, name) != getattr(default, name)
        ]


def _list(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p for p in text.split(",") if p)) if text else ()


def _char(text: str, what: str) -> str:
    char = _ESCAPES.get(text.lower(), text)
    if len(char) != 1 or char in "\r\n":
        raise InvalidInput(f"{what} must be one character (\\t for a tab), got {text[:20]!r}")
    return char


def _bool(text: str, what: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidInput(f"{what} must be true or false, got {text[:20]!r}")


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(","))
    if len(names) > MAX_NAMES or any(not n for n in names):
        raise InvalidInput("names must be a comma-separated list of non-empty column names")
    return names


def _types(text: str) -> dict[str, pa.DataType]:
    try:
        declared = json.loads(text)
    except ValueError:
        declared = None
    if not isinstance(declared, dict) or not all(isinstance(k, str) and isinstance(t, str) for k, t in declared.items()):
        raise InvalidInput('types must be a JSON object of column name to type name, e.g. {"id": "BIGINT", "day": "DATE"}')
    return {name: parse_type(t) for name, t in declared.items()}


def _date_format(text: str) -> str:
    if "%" not in text or len(text) > 100:
        raise InvalidInput(f"date_format must be a strptime format such as %d/%m/%Y, got {text[:40]!r}")
    return text


def _decimal(text: str) -> str:
    if text not in (".", ","):
        raise InvalidInput(f"decimal must be '.' or ',', got {text[:20]!r}")
    return text


def _encoding(text: str) -> str:
    try:
        info = codecs.lookup(text)
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise InvalidInput(f"unknown text encoding {text[:40]!r} (latin-1, cp1252, utf-16 ...)")
    return info.name
