"""How broken data rules are reported: one :class:`Failure` per table, column and rule.

Schemas (:mod:`tierlab.data.schemas`) and loaders (:mod:`tierlab.data.loaders`) collect failures
and raise them together in one ``DataValidationError`` whose message has one line per failure,
in scikit-learn style::

    table 'transactions' (file x.csv): column 'amount' has 12 values failing rule
    'greater_than_or_equal_to(0)' (first at rows [3, 7, 9]: -5.0, -1.2, -0.3)

Rows are 0-based positions in the table (for a file: data rows after the header).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

#: Offending rows shown per rule.
N_EXAMPLES = 5
#: Rules shown per column, and lines per message; the columns of the rest are still listed.
MAX_RULES_PER_COLUMN = 3
MAX_LINES = 10


@dataclass(frozen=True)
class Failure:
    """One broken rule: which table, file, column and rule, and the first offending rows.

    ``detail`` replaces the standard "has n values failing rule ..." text (whole-column rules);
    ``source_column`` is the file column a canonical column was read from, when it differs.
    """

    table: str | None
    rule: str
    column: str | tuple[str, ...] | None = None
    file: str | Path | None = None
    n: int = 0
    rows: tuple[int, ...] = ()
    values: tuple[object, ...] = ()
    detail: str | None = None
    source_column: Hashable | None = None

    def describe(self) -> str:
        """The message line, e.g. ``table 'x' (file f.csv): column 'a' has 2 values ...``."""
        if self.table is None:  # a rule about the whole data set
            return f"data set {self._what()}"
        return f"{where(self.table, self.file)}: {self._what()}"

    def _what(self) -> str:
        if isinstance(self.column, tuple):
            subject = f"columns ({', '.join(self.column)})"
        elif self.column is not None:
            subject = f"column {self.column!r}"
            if self.source_column is not None and self.source_column != self.column:
                subject += f" (file column {self.source_column!r})"
        else:
            subject = ""
        if self.detail is not None:
            return f"{subject} {self.detail}".strip()
        unit = "rows" if isinstance(self.column, tuple) or self.column is None else "values"
        if self.n == 1:
            unit = unit[:-1]
        verb = "have" if isinstance(self.column, tuple) else "has"
        text = f"{subject} {verb} {self.n} {unit} failing rule {self.rule!r}".strip()
        if self.rows:
            shown = ", ".join(format_value(v) for v in self.values)
            if len(self.rows) == 1 and self.n == 1:
                text += f" (at row {self.rows[0]}: {shown})"
            else:
                first = "first at" if self.n > len(self.rows) else "at"
                text += f" ({first} rows {list(self.rows)}: {shown})"
        return text


def where(table: str | None, file: str | Path | None = None) -> str:
    """``table 'x' (file f.csv)``: the prefix of every message line."""
    text = f"table {table!r}" if table is not None else "data set"
    if file is not None:
        path = Path(file)
        shown = path.name
        if shown.startswith("part-"):  # a part file of a partitioned table: name its folder too
            shown = f"{path.parent.name}/{shown}"
        text += f" (file {shown})"
    return text


def format_value(value: object) -> str:
    """A short, unambiguous rendering of one offending value."""
    if isinstance(value, tuple):
        return "(" + ", ".join(format_value(v) for v in value) + ")"
    if value is None:
        return "None"
    if value is pd.NaT:
        return "NaT"
    if isinstance(value, float) and np.isnan(value):
        return "nan"
    if isinstance(value, pd.Timestamp):
        return str(value.date()) if value == value.normalize() else str(value)
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def format_failures(failures: list[Failure]) -> str:
    """One line for a single failure; otherwise a count and up to ``MAX_LINES`` indented lines.

    At most ``MAX_RULES_PER_COLUMN`` rules are shown per column; every failing column is named.
    """
    if len(failures) == 1:
        return failures[0].describe()
    shown: list[Failure] = []
    per_column: dict[tuple, int] = {}
    for failure in failures:
        key = (failure.table, failure.column)
        if per_column.get(key, 0) < MAX_RULES_PER_COLUMN and len(shown) < MAX_LINES:
            shown.append(failure)
            per_column[key] = per_column.get(key, 0) + 1
    lines = [f"{len(failures)} data validation failures:"]
    lines += [f"  {f.describe()}" for f in shown]
    rest = [f for f in failures if f not in shown]
    if rest:
        columns: dict[str | None, list] = {}
        for f in rest:
            columns.setdefault(f.table, [])
            if f.column not in columns[f.table]:
                columns[f.table].append(f.column)
        listed = "; ".join(f"{where(t)} columns {cols}" for t, cols in columns.items())
        lines.append(f"  ... and {len(rest)} more failures in {listed}")
    return "\n".join(lines)


def rows_failure(
    table: str,
    rule: str,
    column: str,
    file: str | Path | None,
    values: pd.Series,
    mask: np.ndarray | pd.Series,
    source_column: Hashable | None = None,
) -> Failure:
    """The failure of the rows where ``mask`` is true, showing the first of ``values``."""
    rows = np.flatnonzero(np.asarray(mask))
    shown = rows[:N_EXAMPLES]
    return Failure(
        table,
        rule,
        column,
        file,
        n=len(rows),
        rows=tuple(int(r) for r in shown),
        values=tuple(values.iloc[shown]),
        source_column=source_column,
    )


# ----------------------------------------------------------------------------------------------
# pandera failure cases -> Failure records


def from_failure_cases(
    table: str,
    schema: pa.DataFrameSchema,
    df: pd.DataFrame,
    cases: pd.DataFrame,
    file: str | Path | None = None,
    *,
    frame_check_columns: Mapping[str, str],
    hints: Mapping[str, str],
) -> list[Failure]:
    """Turn pandera's ``SchemaErrors.failure_cases`` into one :class:`Failure` per column and rule.

    Parameters
    ----------
    table, schema, df, file
        The validated table (with a default ``RangeIndex``, so that rows are positions).
    cases
        ``failure_cases`` of lazy validation. Checks built with ``n_failure_cases`` keep only the
        first offending rows; their count is recomputed by running the check again.
    frame_check_columns
        Frame-wide check name -> the column its failures are reported under.
    hints
        Rule name -> advice appended to whole-column (dtype) failures of that rule.
    """
    out: dict[tuple, Failure] = {}
    cases = cases.reset_index(drop=True)
    for (column, check, number), group in cases.groupby(
        ["column", "check", "check_number"], dropna=False, sort=False
    ):
        column = None if pd.isna(column) else str(column)
        number = None if pd.isna(number) else int(number)
        args = (table, schema, df, file, column, str(check), number, group)
        made = _failure(*args, frame_check_columns, hints)
        out.setdefault((made.column, made.rule), made)
    order = {c: i for i, c in enumerate(df.columns)}
    return sorted(out.values(), key=lambda f: _position(f, order))


def _position(failure: Failure, order: dict[Hashable, int]) -> tuple[int, bool]:
    """Failures in column order; within a column, whole-column rules (dtype, missing) first."""
    column = failure.column[0] if isinstance(failure.column, tuple) else failure.column
    return order.get(column, -1), failure.detail is None


def _failure(
    table: str,
    schema: pa.DataFrameSchema,
    df: pd.DataFrame,
    file: str | Path | None,
    column: str | None,
    check: str,
    number: int | None,
    group: pd.DataFrame,
    frame_check_columns: Mapping[str, str],
    hints: Mapping[str, str],
) -> Failure:
    if check == "column_in_dataframe":
        missing = str(group["failure_case"].iloc[0])
        present = [str(c) for c in df.columns]
        detail = f"is missing, failing rule 'column_in_dataframe'; columns present: {present}"
        return Failure(table, check, missing, file, detail=detail)
    if check == "multiple_fields_uniqueness":
        rows = sorted({int(i) for i in group["index"].dropna()})
        keys = tuple(str(c) for c in schema.unique)
        shown = rows[:N_EXAMPLES]
        values = tuple(tuple(df.at[r, k] for k in keys) for r in shown)
        return Failure(table, "unique", keys, file, len(rows), tuple(shown), values)
    if check in frame_check_columns:
        target = frame_check_columns[check]
        failed = ~schema.checks[number](df).check_output.to_numpy()
        return rows_failure(table, check, target, file, df[target], failed)
    if column is None:  # a frame-wide check without a column: report it as pandera names it
        return Failure(table, check, None, file, detail=f"fails rule {check!r}")
    if group["index"].isna().all():  # a whole-column rule: the dtype rules
        detail = f"has dtype {df[column].dtype}, failing rule {check!r}"
        if check in hints:
            detail += f"; {hints[check]}"
        return Failure(table, check, column, file, detail=detail)
    group = group.dropna(subset=["index"])
    rows = group["index"].astype("int64").to_numpy()
    first = np.argsort(rows, kind="stable")[:N_EXAMPLES]
    n = len(group)
    if number is not None and n >= N_EXAMPLES:  # pandera kept only the first few: recount
        output = _column_schema(schema, column).checks[number](df[column]).check_output
        n = int((~output).sum()) if isinstance(output, pd.Series) else int(not output)
    return Failure(
        table,
        check,
        column,
        file,
        n,
        tuple(int(rows[i]) for i in first),
        tuple(group["failure_case"].iloc[first]),
    )


def _column_schema(schema: pa.DataFrameSchema, column: str) -> pa.Column:
    """The column component that checked ``column`` (possibly a regex component)."""
    if column in schema.columns:
        return schema.columns[column]
    return next(
        c for c in schema.columns.values() if c.regex and pd.Index([column]).str.match(c.name)[0]
    )
