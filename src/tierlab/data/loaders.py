"""Generic loaders: canonical tables from CSV or Parquet files, described entirely in config.

A data set is a :class:`TableSource` node in ``conf/data/<name>.yaml``: one entry per table it
has (``transactions``, ``customers``, ``balances``, ``products``, ``profitability``), each a
mapping of the read options of :class:`TableSpec`.  Everything that is specific to a data set
(path, delimiter, encoding, column names, date format, id type, sign convention) lives there,
never in code.  For example, CDNOW's whitespace-separated purchase log::

    _target_: tierlab.data.loaders.TableSource
    name: cdnow
    transactions:
      path: ${paths.shared_data_dir}/cdnow/CDNOW_master.txt
      delimiter: '\\s+'
      date_format: "%Y%m%d"
      columns: {customer_id: customer_id, timestamp: date, amount: dollar_value}

Reading problems (a missing or mapped-but-absent column, a wrong delimiter or encoding, an empty or
header-only file, unparseable dates or amounts) raise :class:`DataValidationError` naming the
file, column, rows and rule, like the schema checks of :mod:`tierlab.data.schemas` that follow.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from tierlab.data.failures import Failure, where
from tierlab.data.parsing import (
    Origin,
    map_directions,
    parse_amounts,
    parse_dates,
    parse_ids,
    split_signed,
)
from tierlab.data.readers import (
    CsvFormat,
    csv_columns,
    parquet_columns,
    read_csv,
    read_parquet,
    single_column_message,
)
from tierlab.data.schemas import (
    DATE_COLUMNS,
    DIRECTIONS,
    DataValidationError,
    canonical_columns,
    raise_failures,
    validate_bank,
)
from tierlab.data.tables import INPUT_TABLES, BankData

#: File format by suffix, when ``format`` is not given.
FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".dat": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
AMOUNT_SIGNS = ("positive", "signed", "direction_column")
ID_DTYPES = ("str", "int")


@dataclass(frozen=True)
class TableSpec:
    """How to read one table: the options of a table entry in ``conf/data/<name>.yaml``.

    These defaults are the only ones: a data set's YAML gives what differs from them.

    Attributes
    ----------
    path
        The file. Relative paths are taken from the working directory; configs use
        ``${paths.shared_data_dir}``.
    format
        ``csv`` or ``parquet``; ``None`` = from the suffix (``.csv .txt .tsv .dat`` are CSV,
        ``.parquet .pq`` Parquet).
    delimiter
        CSV field separator; a regular expression such as ``\\s+`` (any whitespace) works.
    encoding
        CSV text encoding.
    header
        Row number of the CSV header line (after ``skiprows``), or ``None`` when there is none
        (then give ``names``, or map columns by position ``0, 1, ...``).
    skiprows
        Lines to skip at the start of a CSV file.
    names
        Column names for a CSV file without a header line.
    decimal
        CSV decimal separator.
    columns
        Canonical column name -> column name in the file. Canonical columns that are not mapped
        are taken from a file column of the same name.
    keep
        Other file columns kept beside the canonical ones (as attributes): ``all`` or a list.
    snake_case
        Rename the kept columns to lower-case snake_case (``CREDIT_LIMIT`` -> ``credit_limit``).
    id_dtype
        ``str`` or ``int`` for ``customer_id``; ``None`` = ``str`` for CSV (so zero-padded ids
        survive) and the stored type for Parquet.
    date_format
        ``strftime`` format of the date columns (e.g. ``%Y%m%d``); ``None`` = inferred by pandas.
    amount_sign
        Transactions only. ``positive``: amounts are already >= 0. ``signed``: negative amounts are
        debits, the others (zero included) credits; sets ``direction`` and keeps the absolute
        value.
        ``direction_column``: the mapped ``direction`` column says credit or debit (translated
        with ``direction_values``), amounts are >= 0.
    direction_values
        Value in the file's direction column -> ``credit`` or ``debit``.
    """

    path: str
    format: str | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    header: int | None = 0
    skiprows: int | None = None
    names: list[str] | None = None
    decimal: str = "."
    columns: dict[str, Hashable] = field(default_factory=dict)
    keep: str | list[Hashable] = "all"
    snake_case: bool = False
    id_dtype: str | None = None
    date_format: str | None = None
    amount_sign: str = "positive"
    direction_values: dict[Hashable, str] | None = None

    @classmethod
    def from_config(cls, table: str, options: Mapping[str, Any]) -> TableSpec:
        """Build and check the options of one table (unknown keys are errors)."""
        if not isinstance(options, Mapping):
            raise ValueError(f"data.{table} should be a mapping of read options, got {options!r}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"data.{table}: unknown option(s) {unknown}; options are {known}")
        if "path" not in options:
            raise ValueError(f"data.{table}: 'path' is required")
        spec = cls(**options)
        spec._check(table)
        return spec

    def _check(self, table: str) -> None:
        if self.amount_sign not in AMOUNT_SIGNS:
            raise ValueError(
                f"data.{table}.amount_sign={self.amount_sign!r} should be one of {AMOUNT_SIGNS}"
            )
        if self.amount_sign != "positive" and table != "transactions":
            raise ValueError(f"data.{table}.amount_sign applies to transactions only")
        if self.amount_sign == "signed" and "direction" in self.columns:
            raise ValueError(
                f"data.{table}: amount_sign=signed derives direction from the amount sign; "
                "do not also map a direction column"
            )
        if self.amount_sign == "direction_column" and "direction" not in self.columns:
            raise ValueError(
                f"data.{table}: amount_sign=direction_column needs columns.direction "
                "(the file column saying credit or debit)"
            )
        if self.id_dtype not in (None, *ID_DTYPES):
            raise ValueError(
                f"data.{table}.id_dtype={self.id_dtype!r} should be one of {ID_DTYPES}"
            )
        if self.keep != "all" and not isinstance(self.keep, list):
            raise ValueError(f"data.{table}.keep={self.keep!r} should be 'all' or a list")
        if self.direction_values is not None:
            bad = sorted({str(v) for v in self.direction_values.values()} - set(DIRECTIONS))
            if bad:
                raise ValueError(
                    f"data.{table}.direction_values maps to {bad}; values should be {DIRECTIONS}"
                )

    def csv_format(self) -> CsvFormat:
        return CsvFormat(
            delimiter=self.delimiter,
            encoding=self.encoding,
            header=self.header,
            skiprows=self.skiprows,
            names=self.names,
            decimal=self.decimal,
        )

    def file_format(self, table: str) -> str:
        if self.format is not None:
            if self.format not in ("csv", "parquet"):
                raise ValueError(f"data.{table}.format={self.format!r} should be csv or parquet")
            return self.format
        suffix = Path(self.path).suffix.lower()
        if suffix not in FORMATS:
            raise ValueError(
                f"data.{table}: cannot tell the format of {Path(self.path).name!r} from its "
                f"suffix; set data.{table}.format to csv or parquet"
            )
        return FORMATS[suffix]


class TableSource:
    """A data set read from CSV or Parquet files, one file per canonical table.

    Parameters
    ----------
    name
        Short name of the data set.
    transactions, customers, balances, products, profitability
        Read options of each table the data set has (see :class:`TableSpec`); ``None`` when it
        does not have it.
    data_start, data_end
        First and last day covered by the data. ``None`` = the days of the first and last
        transaction (and no time axis at all when there is no transaction log).
    n_customers
        Keep only the first ``n_customers`` customers by sorted id (a deterministic sample for
        quick runs, e.g. ``debug=fast``); ``None`` keeps everyone.  The whole data set is
        validated before the sample is taken.
    """

    def __init__(
        self,
        name: str,
        transactions: Mapping[str, Any] | None = None,
        customers: Mapping[str, Any] | None = None,
        balances: Mapping[str, Any] | None = None,
        products: Mapping[str, Any] | None = None,
        profitability: Mapping[str, Any] | None = None,
        data_start: str | pd.Timestamp | None = None,
        data_end: str | pd.Timestamp | None = None,
        n_customers: int | None = None,
    ) -> None:
        self.name = name
        self.transactions = transactions
        self.customers = customers
        self.balances = balances
        self.products = products
        self.profitability = profitability
        self.data_start = data_start
        self.data_end = data_end
        self.n_customers = n_customers

    def load(self) -> BankData:
        """Read every configured table, then validate the data set.

        Raises
        ------
        FileNotFoundError
            A configured file does not exist.
        DataValidationError
            A file cannot be read as configured, or the tables break their contracts.
        """
        specs = {
            table: TableSpec.from_config(table, options)
            for table in INPUT_TABLES
            if (options := getattr(self, table)) is not None
        }
        if not specs:
            raise ValueError(
                f"data set {self.name!r} configures no table; give at least one of {INPUT_TABLES}"
            )
        tables = {table: read_table(table, spec) for table, spec in specs.items()}
        start, end = self._time_axis(tables.get("transactions"))
        data = BankData(
            name=self.name,
            **tables,
            data_start=start,
            data_end=end,
            files={table: resolve(spec.path) for table, spec in specs.items()},
        )
        data = validate_bank(data)
        return data if self.n_customers is None else first_customers(data, self.n_customers)

    def _time_axis(
        self, transactions: pd.DataFrame | None
    ) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        start, end = as_day(self.data_start, "data_start"), as_day(self.data_end, "data_end")
        if transactions is not None and len(transactions):
            stamps = transactions["timestamp"]
            if start is None and not pd.isna(first := stamps.min()):
                start = first.normalize()
            if end is None and not pd.isna(last := stamps.max()):
                end = last.normalize()
        return start, end


def first_customers(data: BankData, n: int) -> BankData:
    """The same data set restricted to its first ``n`` customers by sorted id."""
    if n < 1:
        raise ValueError(f"data.n_customers={n} should be >= 1 (or null for all customers)")
    ids = data.customers["customer_id"] if data.customers is not None else None
    if ids is None:
        ids = data.transactions["customer_id"]
    keep = pd.Index(pd.unique(ids)).sort_values()[:n]
    for table, frame in data.tables().items():
        subset = frame.loc[frame["customer_id"].isin(keep)].reset_index(drop=True)
        setattr(data, table, subset)
    return data


def as_day(value: str | pd.Timestamp | None, key: str) -> pd.Timestamp | None:
    """A configured date as a day (midnight), or ``None``."""
    if value is None:
        return None
    try:
        return pd.Timestamp(value).normalize()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"data.{key}={value!r} is not a date: {exc}") from exc


def resolve(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


# ----------------------------------------------------------------------------------------------
# reading one table


def read_table(table: str, spec: TableSpec) -> pd.DataFrame:
    """Read one table from its file and bring it to canonical form (not yet validated).

    Columns are renamed to canonical names, ids and dates parsed, amounts made non-negative as
    the sign convention says. Other kept columns follow, in file order.
    """
    path = resolve(spec.path)
    if not path.is_file():
        raise FileNotFoundError(f"{where(table)}: file {str(path)!r} does not exist")
    parquet = spec.file_format(table) == "parquet"
    if parquet:
        present = parquet_columns(table, path)
    else:
        present = csv_columns(table, path, spec.csv_format())
        check_not_one_column(table, spec, path, present)
    sources = source_columns(table, spec, path, present)
    wanted = list(dict.fromkeys([*sources.values(), *extra_columns(table, spec, path, present)]))
    if parquet:
        raw = read_parquet(table, path, wanted)
    else:
        raw = read_csv_table(table, path, spec, wanted, sources)
    if len(raw) == 0:
        what = "has no rows" if parquet else "has a header but no data rows"
        detail = f"{what}, failing rule 'not empty'"
        raise_failures([Failure(table, "not empty", None, path, detail=detail)])
    return canonical_frame(table, spec, path, raw, sources, wanted)


def read_csv_table(
    table: str, path: Path, spec: TableSpec, wanted: list[Hashable], sources: dict[str, Hashable]
) -> pd.DataFrame:
    """Read the wanted columns; ids and dates as strings (parsed afterwards, with row numbers).

    Every column is read (no ``usecols``), so that pandas reports lines with too many fields
    instead of silently cutting them.
    """
    as_text = [sources[c] for c in ("customer_id", *DATE_COLUMNS[table]) if c in sources]
    raw = read_csv(table, path, spec.csv_format(), dtype=dict.fromkeys(as_text, "str"))
    return raw[wanted]


def check_not_one_column(table: str, spec: TableSpec, path: Path, present: list[Hashable]) -> None:
    """A CSV header read as one column while more are needed: the delimiter is wrong."""
    required, _ = canonical_columns(table)
    needed = {spec.columns.get(n, n) for n in required} | set(spec.columns.values())
    if len(present) == 1 and needed - set(present):
        raise DataValidationError(single_column_message(table, path, spec.csv_format(), *present))


# ----------------------------------------------------------------------------------------------
# column mapping


def source_columns(
    table: str, spec: TableSpec, path: Path, present: list[Hashable]
) -> dict[str, Hashable]:
    """Canonical name -> file column, checking that every needed column is in the file."""
    required, optional = canonical_columns(table)
    derived = {"direction"} if spec.amount_sign == "signed" else set()
    sources = dict(spec.columns)
    for name in (*required, *optional):
        if name not in sources and name in present and name not in derived:
            sources[name] = name
    failures = []
    for name in required:
        if name not in sources:
            detail = (
                f"is missing, failing rule 'column_in_dataframe': no file column is named "
                f"{name!r} and data.{table}.columns does not map it; columns in the file: "
                f"{present}"
            )
            failures.append(Failure(table, "column_in_dataframe", name, path, detail=detail))
    for name, source in sources.items():
        if source not in present:
            detail = (
                f"is mapped to file column {source!r}, which is missing, failing rule "
                f"'column_in_dataframe'; columns in the file: {present}"
            )
            failures.append(Failure(table, "column_in_dataframe", name, path, detail=detail))
    raise_failures(failures)
    return sources


def extra_columns(
    table: str, spec: TableSpec, path: Path, present: list[Hashable]
) -> list[Hashable]:
    """The kept non-canonical file columns, in file order."""
    if spec.keep == "all":
        used = set(spec.columns.values())
        return [c for c in present if c not in used]
    missing = [c for c in spec.keep if c not in present]
    if missing:
        detail = (
            f"is missing column(s) {missing} listed in data.{table}.keep, failing rule "
            f"'column_in_dataframe'; columns in the file: {present}"
        )
        raise DataValidationError(f"{where(table, path)}: {detail}")
    return list(spec.keep)


def snake(name: Hashable) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", str(name)).strip("_").lower()


def canonical_frame(
    table: str,
    spec: TableSpec,
    path: Path,
    raw: pd.DataFrame,
    sources: dict[str, Hashable],
    wanted: list[Hashable],
) -> pd.DataFrame:
    """Rename, parse and convert the raw columns into the canonical table."""
    out: dict[str, pd.Series] = {}
    failures: list[Failure] = []
    for name, source in sources.items():
        column, origin, failure = raw[source], Origin(table, path, source), None
        if name == "customer_id":
            column, failure = parse_ids(column, origin, spec.id_dtype)
        elif name in DATE_COLUMNS[table]:
            column, failure = parse_dates(column, origin, name, spec.date_format)
        elif name == "amount":
            column, failure = parse_amounts(column, origin, name)
        elif name == "direction" and spec.direction_values is not None:
            column, failure = map_directions(column, origin, spec.direction_values)
        out[name] = column
        failures += [failure] if failure is not None else []
    raise_failures(failures)
    if table == "transactions" and spec.amount_sign == "signed":
        out["amount"], out["direction"] = split_signed(out["amount"])
    used = set(sources.values())
    for source in wanted:
        if source in used:
            continue
        name = snake(source) if spec.snake_case else str(source)
        if name in out:
            detail = (
                f"has file column {source!r} kept as {name!r}, a name already taken by a "
                f"mapped column, failing rule 'unique column names'; drop it from "
                f"data.{table}.keep or map it"
            )
            raise DataValidationError(f"{where(table, path)}: {detail}")
        out[name] = raw[source]
    return pd.DataFrame(out)


__all__ = ["TableSource", "TableSpec", "read_table"]
