"""DataFrames in and out of PostgreSQL through COPY: a query's rows as a frame, a frame's rows as COPY text, and
a frame COPY'd into a table. Used by the analytics computations and the IO manager (defs/postgres_io.py)."""

from __future__ import annotations

import io
import json
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from ig_analytics.storage.db import CHUNK_ROWS, COPY_ESCAPES, COPY_NULL


def read_frame(
    conn: Connection,
    sql: str,
    params: dict[str, Any] | None = None,
    *,
    text_columns: Sequence[str] = (),
    date_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """Run ``sql`` (psycopg2 ``%(name)s`` parameters) and return its rows as a DataFrame, via
    ``COPY (query) TO STDOUT``: several times faster than fetching rows for large results."""
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        query = cur.mogrify(sql, params or {}).decode()
        buffer = io.StringIO()
        cur.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
    buffer.seek(0)
    frame = pd.read_csv(
        buffer,
        dtype={c: str for c in text_columns},
        keep_default_na=False,
        na_values=[""],
    )
    for column in date_columns:
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


def frame_rows(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple]:
    """Rows for COPY: NaN / NA become None, numpy scalars plain Python."""
    sub = frame[list(columns)].astype(object)
    sub = sub.where(pd.notna(sub), None)
    return list(sub.itertuples(index=False, name=None))


# COPY's text format, as storage/db.py writes it: tab-separated, \N for NULL, backslash escapes in the values.
_SPECIAL = ("\\", "\t", "\n", "\r")


def _escaped(texts: list) -> list:
    """``texts`` (str or None) with COPY's escapes; one C-speed scan first, as values rarely need any."""
    present = [t for t in texts if t is not None]
    joined = "".join(present)
    if not any(ch in joined for ch in _SPECIAL):
        return texts
    return [None if t is None else t.translate(COPY_ESCAPES) for t in texts]


def _object_text(value: Any) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float):
        return float.__repr__(value)  # numpy 2's repr of a np.float64 names its type
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _column_text(values: pd.Series, as_json: bool, as_date: bool) -> np.ndarray:
    """One column as COPY text cells (object array of str, NULL as :data:`COPY_NULL`): each distinct value is
    formatted once (timestamps, counts, rates repeat), floats by repr (exact); object columns value by value."""
    dtype = values.dtype
    if as_json:
        texts = [None if v is None or (isinstance(v, float) and v != v)
                 else json.dumps(v, separators=(",", ":"), default=str) for v in values.tolist()]
        return np.array([COPY_NULL if t is None else t for t in _escaped(texts)], dtype=object)
    if dtype.kind == "f":
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
        if (np.signbit(numbers) & (numbers == 0)).any():  # -0.0 == 0.0 would share one text: repr each
            out = np.array(list(map(repr, numbers.tolist())), dtype=object)
            out[np.isnan(numbers)] = COPY_NULL
            return out
        codes, uniques = pd.factorize(numbers)  # NaN: code -1
        return np.array(list(map(repr, uniques.tolist())) + [COPY_NULL], dtype=object)[codes]
    if dtype == object:  # any Python values: formatted one by one, as storage/db.py does
        texts = _escaped([_object_text(v) for v in values.tolist()])
        return np.array([COPY_NULL if t is None else t for t in texts], dtype=object)
    codes, uniques = pd.factorize(values)
    if dtype.kind == "M" and as_date:  # the wall-clock date, in the values' own time zone if they have one
        days = uniques.tz_localize(None) if isinstance(dtype, pd.DatetimeTZDtype) else uniques
        texts = list(np.datetime_as_string(days.to_numpy(), unit="D"))
    elif isinstance(dtype, pd.DatetimeTZDtype):
        texts = [t + "+00" for t in np.datetime_as_string(uniques.tz_convert("UTC").tz_localize(None).to_numpy())]
    elif dtype.kind == "M":
        texts = list(np.datetime_as_string(uniques.to_numpy()))
    elif dtype.kind == "b" or str(dtype) == "boolean":
        texts = ["t" if v else "f" for v in uniques.tolist()]
    elif dtype.kind in "iu" or pd.api.types.is_integer_dtype(dtype):
        texts = list(map(str, uniques.tolist()))
    else:  # strings (pandas' str dtype) and anything else
        texts = _escaped([_object_text(v) for v in uniques.tolist()])
        texts = [COPY_NULL if t is None else t for t in texts]
    return np.array(texts + [COPY_NULL], dtype=object)[codes]  # code -1 (NA): the last, NULL


def copy_chunks(frame: pd.DataFrame, json_columns: Sequence[str] = (), date_columns: Sequence[str] = (),
                chunk_rows: int = 10_000) -> Iterator[tuple[str, int]]:
    """``frame``'s rows as COPY text (text format, columns in frame order), ``chunk_rows`` lines at a time:
    (text, rows). NaN / NA / NaT / None are NULL; ``json_columns`` are serialized as JSON; ``date_columns``
    (datetime64) are written as dates; timestamps with a time zone as UTC instants; booleans as t/f. Each chunk's
    cells are encoded column by column when it is asked for: only one chunk's text objects exist at a time (issue
    27: the cells of a whole frame of 250,000 rows held ~70 MB, its one text ~170 MB at the peak)."""
    for start in range(0, len(frame), chunk_rows):
        part = frame.iloc[start:start + chunk_rows]
        cells = [_column_text(part[c], c in json_columns, c in date_columns).tolist() for c in part.columns]
        lines = list(map("\t".join, zip(*cells)))
        del cells
        yield "\n".join(lines) + "\n", len(lines)


def copy_frame(conn: Connection, table: str, frame: pd.DataFrame, json_columns: Sequence[str] = (),
               date_columns: Sequence[str] = ()) -> int:
    """COPY ``frame``'s rows into ``instagram.<table>`` as they are (no upsert: the caller deleted the rows it
    replaces, in the same transaction), encoded by :func:`copy_chunks` (no Python loop per cell), one COPY per
    chunk of :data:`~ig_analytics.storage.db.CHUNK_ROWS` rows. NaN / NA / None are NULL; ``json_columns`` are
    serialized as JSON; ``date_columns`` (datetime64) are written as dates."""
    if frame.empty:
        return 0
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    copy_sql = f'COPY instagram."{table}" ({columns}) FROM STDIN'
    written = 0
    with conn.connection.dbapi_connection.cursor() as cur:
        for text, rows in copy_chunks(frame, json_columns, date_columns, chunk_rows=CHUNK_ROWS):
            # one read of the whole text: psycopg2 reads 8 KiB at a time by default
            cur.copy_expert(copy_sql, io.StringIO(text), size=len(text) + 1)
            written += rows
    return written
