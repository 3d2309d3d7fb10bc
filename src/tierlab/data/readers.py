"""Read CSV and Parquet files, turning every reading problem into a ``DataValidationError``.

pandas and pyarrow report a wrong delimiter, a wrong encoding, an empty file or a ragged line
with their own tracebacks (or, for a wrong delimiter, not at all: the file reads as one column).
The functions here name the table, the file, the line or column and the rule instead, and say
which config option to change.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tierlab.data.failures import where
from tierlab.data.schemas import DataValidationError

#: Delimiters looked for in a header that was read as a single column.
LIKELY_DELIMITERS = (",", ";", "\t", "|")
#: The delimiter pandas reads as "any run of whitespace" with its fast C parser.
WHITESPACE = r"\s+"


@dataclass(frozen=True)
class CsvFormat:
    """The CSV options of a table (see :class:`tierlab.data.loaders.TableSpec`)."""

    delimiter: str
    encoding: str
    header: int | None
    skiprows: int | None
    names: list[str] | None
    decimal: str

    def read_options(self) -> dict[str, Any]:
        """Keyword arguments of ``pd.read_csv``; regex delimiters need the python engine."""
        regex = len(self.delimiter) > 1 and self.delimiter != WHITESPACE
        return {
            "sep": self.delimiter,
            "encoding": self.encoding,
            "header": self.header,
            "skiprows": self.skiprows,
            "names": self.names,
            "decimal": self.decimal,
            "engine": "python" if regex else "c",
        }


def csv_columns(table: str, path: Path, fmt: CsvFormat) -> list[Hashable]:
    """The column names of a CSV file, read from its header alone."""
    return list(read_csv(table, path, fmt, nrows=0).columns)


def read_csv(table: str, path: Path, fmt: CsvFormat, **kwargs: Any) -> pd.DataFrame:
    """``pd.read_csv`` with the table's options; reading errors become DataValidationError."""
    try:
        return pd.read_csv(path, **fmt.read_options(), **kwargs)
    except UnicodeDecodeError as exc:
        raise DataValidationError(encoding_message(table, path, fmt)) from exc
    except pd.errors.EmptyDataError as exc:
        detail = "is empty (no header, no data), failing rule 'not empty'"
        raise DataValidationError(f"{where(table, path)}: {detail}") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        detail = (
            f"cannot be parsed as CSV with delimiter {fmt.delimiter!r}, failing rule "
            f"'csv format': {str(exc).strip()}; check data.{table}.delimiter, header and skiprows"
        )
        raise DataValidationError(f"{where(table, path)}: {detail}") from exc


def encoding_message(table: str, path: Path, fmt: CsvFormat) -> str:
    """Name the first line (and, when it can be told, column) that is invalid in the encoding."""
    decoder = codecs.getincrementaldecoder(fmt.encoding)()
    header_line = (fmt.skiprows or 0) + (fmt.header or 0) + 1
    names: list[str] | None = None
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                text = decoder.decode(line)
            except UnicodeDecodeError as exc:
                bad = exc.object[exc.start : exc.end]
                column = bad_column(line, bad, fmt, names)
                return (
                    f"{where(table, path)}: cannot be decoded as {fmt.encoding!r} "
                    f"at line {number}{column}, failing rule 'encoding {fmt.encoding}': "
                    f"byte(s) {bad!r}; set data.{table}.encoding (e.g. latin-1 or cp1252)"
                )
            if fmt.header is not None and number == header_line:
                names = split_fields(text.rstrip("\r\n"), fmt.delimiter)
    return f"{where(table, path)}: cannot be decoded as {fmt.encoding!r}"


def bad_column(line: bytes, bad: bytes, fmt: CsvFormat, names: list[str] | None) -> str:
    """`` in column 'x'`` for the field holding the undecodable bytes, or ``""``."""
    text = line.replace(bad, b"\x00").decode(fmt.encoding, errors="replace")
    fields = split_fields(text, fmt.delimiter)
    if names is None or len(fields) != len(names):
        return ""
    index = next((i for i, f in enumerate(fields) if "\x00" in f), None)
    return "" if index is None else f" in column {names[index]!r}"


def split_fields(text: str, delimiter: str) -> list[str]:
    if delimiter == WHITESPACE:
        return text.split()
    if len(delimiter) > 1:
        return re.split(delimiter, text)
    return text.split(delimiter)


def single_column_message(table: str, path: Path, fmt: CsvFormat, only: Hashable) -> str:
    """A file read as one column: the usual symptom of a wrong delimiter."""
    text = str(only)
    guesses = [d for d in LIKELY_DELIMITERS if d != fmt.delimiter and d in text]
    hint = f"; the header contains {guesses[0]!r}" if guesses else ""
    return (
        f"{where(table, path)}: was read as a single column {text!r} with delimiter "
        f"{fmt.delimiter!r}, failing rule 'delimiter'{hint}; set data.{table}.delimiter"
    )


def parquet_columns(table: str, path: Path) -> list[str]:
    """The column names of a Parquet file, from its schema alone."""
    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as exc:
        raise DataValidationError(parquet_message(table, path, exc)) from exc


def read_parquet(table: str, path: Path, columns: list[Hashable]) -> pd.DataFrame:
    try:
        return pd.read_parquet(path, columns=[str(c) for c in columns])
    except (pa.ArrowException, OSError) as exc:
        raise DataValidationError(parquet_message(table, path, exc)) from exc


def parquet_message(table: str, path: Path, exc: Exception) -> str:
    return (
        f"{where(table, path)}: cannot be read as Parquet, failing rule 'parquet file': {exc}; "
        f"check data.{table}.format"
    )
