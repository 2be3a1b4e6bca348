"""The PostgreSQL IO manager (``postgres_io``): assets whose result is a table of rows return a DataFrame (or
:class:`Rows`) and this writes it into the table their ``dagster/table_name`` names; a downstream asset gets the
partition slice it asks for, only the columns it names (``AssetIn(metadata={"columns": [...]})``).

Writes (docs/architecture.md, "IO manager"): the project's COPY upsert (:func:`storage.db.bulk_upsert`), keyed by
the table's primary key, with the table's merge rule (a NULL never overwrites a measured value), in one
transaction per written slice. The slice is the partition's time window on the declared ``slice column`` (or the
narrower window a :class:`Rows` names; the whole table for an unpartitioned asset without one). A row outside it
is a programming error. A :class:`Rows` may also name a ``subset`` (column -> values, e.g. one shard's accounts):
the slice is then only the rows with those values, and a row outside it is refused too. Mode ``replace`` deletes
the slice's rows the output no longer has (derived tables); ``upsert`` keeps them. Columns and types are checked
against ``storage/tables.py`` (a user's table: against the asset's declared column schema, and the table is
created from it when missing).

The checks and the COPY text are computed column by column (``storage.frames.copy_chunks``), never row by
row in Python: the write costs about what the plain COPY it wraps costs (BENCHMARKS.md, section 4b).
"""

# No `from __future__ import annotations` here: Dagster binds the `database` field to the top-level `database`
# resource (definitions.py) only when it can see the field's type, and a string annotation is refused.

import json
import time
from dataclasses import dataclass
from datetime import date
from typing import Any, Mapping, Sequence

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from ig_analytics.storage.frames import copy_chunks, read_frame
from ig_analytics.defs.dagster_internals import CheckError
from ig_analytics.defs.resources import AnalyticsDatabase
from ig_analytics.storage import db
from ig_analytics.storage.merge_rules import MERGE_RULES
from ig_analytics.storage.tables import TABLES, Column

IO_MANAGER_KEY = "postgres_io"
MODE = "ig_analytics/write_mode"  # "upsert" | "replace"
SLICE_COLUMN = "ig_analytics/slice_column"  # the time column a partition's window selects rows by
KEEP_WHEN_UNCHANGED = "ig_analytics/keep_when_unchanged"  # bookkeeping columns not rewritten alone (computed_at)

_INTEGER = {"bigint", "integer", "smallint"}
_FLOAT = {"double precision", "real", "numeric"}


@dataclass(frozen=True)
class Rows:
    """An asset's rows and, optionally, the window they cover when it is narrower than the partition's (or the
    asset is not partitioned), and the ``subset`` of rows they cover (column -> its values, e.g. ``{"ig_user_id":
    [...]}``: the accounts of one shard run): ``replace`` then deletes only inside both."""

    frame: pd.DataFrame
    window: dg.TimeWindow | None = None
    subset: Mapping[str, Sequence[str]] | None = None
    # Rows of OTHER partitions restated because an input outside them changed (media_engagement: a post's
    # follower total, rebuilt by the account-insights sync). Upsert only; checked like ``frame`` except against
    # the window; written in the same transaction.
    restated: pd.DataFrame | None = None


def write_metadata(mode: str, slice_column: str | None = None, keep_when_unchanged: tuple[str, ...] = ()) -> dict:
    """The asset metadata that tells the IO manager how to write the table."""
    if mode not in ("upsert", "replace"):
        raise ValueError(f"write mode {mode!r}: 'upsert' or 'replace'")
    out: dict[str, Any] = {MODE: mode, KEEP_WHEN_UNCHANGED: list(keep_when_unchanged)}
    if slice_column:
        out[SLICE_COLUMN] = slice_column
    return out


def user_table(name: str, columns: list[Column], mode: str, slice_column: str | None = None) -> dict:
    """Metadata of an analyst's own table ``instagram.<name>``: the column schema the UI shows, which is also
    what the IO manager creates the table from and checks writes against (``key=True`` marks the primary key)."""
    if name in TABLES:
        raise ValueError(f"instagram.{name} is a product table: choose another name for your own table")
    schema = dg.TableSchema(columns=[
        dg.TableColumn(c.name, c.type, description=c.description,
                       constraints=dg.TableColumnConstraints(nullable=False) if c.key else None) for c in columns])
    return {"dagster/table_name": f"instagram.{name}", "dagster/column_schema": schema,
            **write_metadata(mode, slice_column)}


@dataclass(frozen=True)
class _Table:
    name: str
    types: dict[str, str]  # column -> PostgreSQL type
    key: tuple[str, ...]
    product: bool  # created by the migrations (else: by this IO manager, from the declared schema)


def _plain(value: Any) -> Any:
    return getattr(value, "value", value) if not isinstance(value, (str, list, dict)) else value


def _table(metadata: dict, asset: str) -> _Table:
    qualified = _plain(metadata.get("dagster/table_name"))
    if not qualified or not str(qualified).startswith(f"{db.SCHEMA}."):
        raise ValueError(f"asset {asset}: metadata dagster/table_name must name a table of schema {db.SCHEMA}")
    name = str(qualified).split(".", 1)[1]
    if name in TABLES:
        table = TABLES[name]
        return _Table(name, {c.name: c.type for c in table.columns}, tuple(c.name for c in table.columns if c.key), True)
    schema = metadata.get("dagster/column_schema")
    schema = getattr(schema, "schema", schema)
    if not isinstance(schema, dg.TableSchema):
        raise ValueError(f"asset {asset}: instagram.{name} is not a product table, so its column schema must be "
                         "declared (postgres_io.user_table)")
    key = tuple(c.name for c in schema.columns if c.constraints and c.constraints.nullable is False)
    if not key:
        raise ValueError(f"asset {asset}: instagram.{name} declares no key column")
    return _Table(name, {c.name: c.type for c in schema.columns}, key, False)


def _check_columns(table: _Table, frame: pd.DataFrame, asset: str) -> None:
    unknown = [c for c in frame.columns if c not in table.types]
    if unknown:
        raise ValueError(f"asset {asset}: column(s) {unknown} are not columns of instagram.{table.name} "
                         f"(storage/tables.py or the declared schema): {sorted(table.types)}")
    missing = [c for c in table.key if c not in frame.columns]
    if missing:
        raise ValueError(f"asset {asset}: the rows lack key column(s) {missing} of instagram.{table.name}")
    for column in frame.columns:
        series = frame[column]
        if series.isna().all():
            continue
        pg = table.types[column]
        if not _type_ok(series, pg):
            raise TypeError(f"asset {asset}: column {column} of instagram.{table.name} is {pg}, the rows give "
                            f"{series.dtype}")
    if frame[list(table.key)].isna().any().any():
        raise ValueError(f"asset {asset}: a key column of instagram.{table.name} is NULL")
    if frame.duplicated(subset=list(table.key)).any():
        raise ValueError(f"asset {asset}: the rows repeat a key of instagram.{table.name} {table.key}")


def _type_ok(series: pd.Series, pg: str) -> bool:
    """Whether the column's values fit PostgreSQL type ``pg``; only that type's check runs (vectorised)."""
    kind = series.dtype.kind
    if pg == "timestamptz":
        return isinstance(series.dtype, pd.DatetimeTZDtype)
    if pg == "date":
        return kind == "M" or (kind == "O" and _all_dates(series))
    if pg == "boolean":
        return kind == "b" or str(series.dtype) == "boolean"
    if pg in _INTEGER:
        if kind == "f":
            values = series.dropna()
            return bool((values == values.round()).all())
        return kind in "iu"
    if pg in _FLOAT:
        return kind in "iuf"
    return kind == "O" or pd.api.types.is_string_dtype(series.dtype)  # text, jsonb, arrays


def _all_dates(series: pd.Series) -> bool:
    """Every non-null value is a date (or datetime): pandas' C type inference, then one by one when it is mixed."""
    if pd.api.types.infer_dtype(series, skipna=True) in ("date", "datetime"):
        return True
    return bool(series.dropna().map(lambda v: isinstance(v, date)).all())


def _bounds(table: _Table, column: str, window: dg.TimeWindow) -> tuple[Any, Any]:
    if table.types[column] == "date":
        return window.start.date(), window.end.date()
    return window.start, window.end


def _partition_window(context: dg.OutputContext | dg.InputContext, what: str) -> dg.TimeWindow:
    """The partitions' time window, or a sentence when the run's partition key is not one the definition has:
    Dagster accepts a launch tagged with a future partition, then finds no key range here."""
    try:
        return context.asset_partitions_time_window
    except CheckError:
        raise ValueError(f"{what}: the run's partition is not a partition of this asset (yet): time partitions "
                         "exist from their start on; launch one that has begun") from None


def _check_slice(table: _Table, frame: pd.DataFrame, column: str, window: dg.TimeWindow, asset: str) -> None:
    start, end = _bounds(table, column, window)
    values = frame[column]
    if table.types[column] == "date":  # compared as midnights, vectorised; NaT is outside
        days = pd.to_datetime(values)
        if isinstance(days.dtype, pd.DatetimeTZDtype):
            days = days.dt.tz_localize(None)  # its wall-clock date, as date() would give
        days = days.dt.normalize()
        outside = ~((days >= pd.Timestamp(start)) & (days < pd.Timestamp(end)))
    else:
        outside = (values < pd.Timestamp(start)) | (values >= pd.Timestamp(end))
    if outside.any():
        raise ValueError(
            f"asset {asset}: {int(outside.sum())} row(s) lie outside the written slice {column} in "
            f"[{start.isoformat()}, {end.isoformat()}) of instagram.{table.name}, e.g. {values[outside].iloc[0]}: "
            "an asset writes only its partition's window")


def _create_user_table(conn, table: _Table) -> None:
    columns = ", ".join(f'"{c}" {t}' + (" NOT NULL" if c in table.key else "") for c, t in table.types.items())
    key = ", ".join(f'"{c}"' for c in table.key)
    conn.execute(sa.text(f'CREATE TABLE IF NOT EXISTS {db.SCHEMA}."{table.name}" ({columns}, PRIMARY KEY ({key}))'))


def _copy_ready(table: _Table, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The frame with whole-number floats of integer columns as integers (a new frame only then), and its
    datetime64 columns that are dates (the COPY encoder writes them as dates: no per-row conversion)."""
    floats = [c for c in frame.columns if table.types[c] in _INTEGER and frame[c].dtype.kind == "f"]
    if floats:
        frame = frame.assign(**{c: frame[c].round().astype("Int64") for c in floats})
    return frame, [c for c in frame.columns if table.types[c] == "date" and frame[c].dtype.kind == "M"]


def _check_subset(table: _Table, frame: pd.DataFrame, subset: Mapping[str, Sequence[str]], asset: str) -> None:
    for column, values in subset.items():
        if column not in table.types or column not in frame.columns:
            raise ValueError(f"asset {asset}: the subset column {column} is not a column of the rows")
        outside = ~frame[column].isin(list(values))
        if outside.any():
            raise ValueError(f"asset {asset}: {int(outside.sum())} row(s) lie outside the written subset of "
                             f"{column} ({len(values)} values), e.g. {frame[column][outside].iloc[0]}")


def _slice_where(table: _Table, slice_column: str | None, window: dg.TimeWindow | None,
                 subset: Mapping[str, Sequence[str]] | None) -> tuple[str, dict]:
    """The WHERE of the written slice (``replace`` deletes it): the window on the slice column, the subset."""
    where, params = ["true"], {}
    if window is not None:
        where.append(f'"{slice_column}" >= :start AND "{slice_column}" < :end')
        params.update(zip(("start", "end"), _bounds(table, slice_column, window)))
    for i, (column, values) in enumerate((subset or {}).items()):
        where.append(f'"{column}" = ANY(:subset_{i})')
        params[f"subset_{i}"] = [str(v) for v in values]
    return " AND ".join(where), params


def _written_window(context: dg.OutputContext, rows: Rows, slice_column: str | None, asset: str):
    """The window the rows cover: theirs, else the partition's (None for an unpartitioned asset without one)."""
    window = rows.window
    if context.has_asset_partitions:
        if not slice_column:
            raise ValueError(f"asset {asset} is partitioned: declare its slice column (write_metadata)")
        partition_window = _partition_window(context, f"asset {asset}")
        if window is None:
            window = partition_window
        elif window.start < partition_window.start or window.end > partition_window.end:
            raise ValueError(f"asset {asset}: the rows' window {window} is not inside its partitions' window "
                             f"{partition_window}")
    if window is not None and not slice_column:
        raise ValueError(f"asset {asset}: rows with a window need a declared slice column")
    return window


def _with_restated(table: _Table, mode: str, frame: pd.DataFrame, rows: Rows, asset: str) -> tuple[pd.DataFrame, int]:
    """The partition's rows with the restated rows of other partitions appended (checked), in key order so that
    two runs upserting overlapping rows lock them in the same order; and how many were restated."""
    restated = rows.restated
    if restated is None or restated.empty:
        return frame, 0
    if mode != "upsert":
        raise ValueError(f"asset {asset}: restated rows of other partitions need write mode upsert, not {mode}")
    _check_columns(table, restated, asset)
    if rows.subset is not None:
        _check_subset(table, restated, rows.subset, asset)
    combined = pd.concat([frame, restated[list(frame.columns)]], ignore_index=True) if len(frame) else restated
    _check_columns(table, combined, asset)  # a restated row repeating one of the partition's keys is refused
    return combined.sort_values(list(table.key), ignore_index=True), len(restated)


class PostgresTableIOManager(dg.ConfigurableIOManager):
    """Stores table-shaped asset outputs in the analytics database and loads partition slices of them."""

    database: AnalyticsDatabase

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            context.add_output_metadata({"rows_written": dg.MetadataValue.int(0)})
            return
        rows = obj if isinstance(obj, Rows) else Rows(obj)
        if not isinstance(rows.frame, pd.DataFrame):
            raise TypeError(f"asset {context.asset_key.to_user_string()}: postgres_io stores a pandas DataFrame "
                            f"or Rows, not {type(rows.frame).__name__}")
        started = time.monotonic()
        asset = context.asset_key.to_user_string()
        metadata = context.definition_metadata or {}
        table = _table(metadata, asset)
        mode = _plain(metadata.get(MODE)) or "upsert"
        slice_column = _plain(metadata.get(SLICE_COLUMN))
        window = _written_window(context, rows, slice_column, asset)
        frame = rows.frame
        _check_columns(table, frame, asset)
        if window is not None:
            if slice_column not in frame.columns:
                raise ValueError(f"asset {asset}: the rows lack the slice column {slice_column}")
            _check_slice(table, frame, slice_column, window, asset)
        if rows.subset is not None:
            _check_subset(table, frame, rows.subset, asset)
        frame, restated = _with_restated(table, mode, frame, rows, asset)
        if mode == "replace" and table.name in MERGE_RULES:
            raise ValueError(f"asset {asset}: instagram.{table.name} holds measured values (a merge rule): it is "
                             "upserted, never replaced")
        frame, dates = _copy_ready(table, frame)
        columns = list(frame.columns)
        deleted = 0
        keep = set(_plain(metadata.get(KEEP_WHEN_UNCHANGED)) or ())
        # encoded column by column (dicts and lists as JSON, as bulk_upsert does), one chunk at a time
        json_columns = [c for c in columns if table.types[c] == "jsonb"] if mode == "replace" else []
        chunks = db.CopyChunks(copy_chunks(frame, json_columns, dates, chunk_rows=db.CHUNK_ROWS))
        with self.database.engine().begin() as conn:  # one transaction per written slice
            if not table.product:
                _create_user_table(conn, table)
            if mode == "replace":  # only the difference: unchanged rows are not rewritten
                written, deleted = db.replace_rows(conn, table.name, columns, chunks, list(table.types), table.key,
                                                   _slice_where(table, slice_column, window, rows.subset), keep)
            elif table.name in MERGE_RULES:
                written = db.bulk_upsert(conn, table.name, columns, chunks)
            else:
                changes = [c for c in columns if c not in table.key and c not in keep] if keep else []
                written = db.bulk_upsert(conn, table.name, columns, chunks, list(table.key), only_if_changed=changes)
        out = {
            "rows_written": dg.MetadataValue.int(written),
            "table": dg.MetadataValue.text(f"{db.SCHEMA}.{table.name}"),
            "write_mode": dg.MetadataValue.text(mode),
            "write_seconds": dg.MetadataValue.float(float(round(time.monotonic() - started, 3))),
        }
        if mode == "replace":
            out["rows_deleted"] = dg.MetadataValue.int(int(deleted))
            out["rows_in_output"] = dg.MetadataValue.int(len(frame))
        if window is not None:
            out["slice"] = dg.MetadataValue.text(f"{slice_column} in [{window.start.isoformat()}, "
                                                 f"{window.end.isoformat()})")
        if restated:
            out["rows_restated"] = dg.MetadataValue.int(restated)
        if rows.subset is not None:
            out["subset"] = dg.MetadataValue.text(", ".join(f"{c}: {len(v)} value(s)" for c, v in rows.subset.items()))
        context.add_output_metadata(out)

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        upstream = context.upstream_output
        asset = upstream.asset_key.to_user_string() if upstream is not None else "?"
        metadata = (upstream.definition_metadata if upstream is not None else None) or {}
        table = _table(metadata, asset)
        wanted = _plain((context.definition_metadata or {}).get("columns")) or list(table.types)
        unknown = [c for c in wanted if c not in table.types]
        if unknown:
            raise ValueError(f"input {context.name}: column(s) {unknown} are not columns of instagram.{table.name}")
        where, params = "true", {}
        if context.has_asset_partitions:
            slice_column = _plain(metadata.get(SLICE_COLUMN))
            if not slice_column:
                raise ValueError(f"input {context.name}: {asset} declares no slice column to select a partition by")
            start, end = _bounds(table, slice_column, _partition_window(context, f"input {context.name}"))
            where = f'"{slice_column}" >= %(start)s AND "{slice_column}" < %(end)s'
            params = {"start": start, "end": end}
        select = ", ".join(f'"{c}"' for c in wanted)
        order = ", ".join(f'"{c}"' for c in table.key)
        with self.database.engine().connect() as conn:
            frame = read_frame(conn, f'SELECT {select} FROM {db.SCHEMA}."{table.name}" WHERE {where} ORDER BY {order}',
                               params, text_columns=[c for c in wanted if table.types[c] == "text"])
        context.add_input_metadata({"rows_loaded": dg.MetadataValue.int(len(frame))})
        return _typed(frame, {c: table.types[c] for c in wanted})


def _typed(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """Proper dtypes for the table's types: nullable integers, floats, UTC timestamps, dates as datetime64,
    booleans, parsed JSON."""
    for column, pg in types.items():
        values = frame[column]
        if pg in _INTEGER:
            frame[column] = pd.to_numeric(values).astype("Int64")
        elif pg in _FLOAT:
            frame[column] = pd.to_numeric(values).astype("float64")
        elif pg == "timestamptz":
            frame[column] = pd.to_datetime(values, utc=True, format="ISO8601")
        elif pg == "date":
            frame[column] = pd.to_datetime(values, format="ISO8601")
        elif pg == "boolean":
            frame[column] = values.map({"t": True, "f": False, True: True, False: False}).astype("boolean")
        elif pg == "jsonb":
            frame[column] = values.map(lambda v: json.loads(v) if isinstance(v, str) else None)
        elif pg == "text":
            frame[column] = values.astype(object).where(values.notna(), None)
    return frame

