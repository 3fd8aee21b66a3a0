"""Schema evolution: the type changes an append may make, and batches brought to a schema.

An append is read against the dataset: its columns are matched by name (ignoring case, as
SQL does), put in the dataset's order and cast to the dataset's types where that loses
nothing (a whole number into a float64 column, int32 into int64). Anything else is refused,
naming the column, unless the append asks to evolve the schema: then new columns are added
(older rows read NULL), missing ones are NULL, and a column's type is promoted along
int8 -> int16 -> int32 -> int64 -> float64 -> string (float32 -> float64 -> string), the
promotions Iceberg and Delta allow plus the fallback to text. Older objects are never
rewritten: the dataset's view reads them through the evolved schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.errors import InvalidInput

__all__ = ["promote", "merge", "AppendPlan", "fit", "storage_schema"]

_STRING = pa.string()
_FLOAT = pa.float64()
_UNITS = ("s", "ms", "us", "ns")


_STORAGE_TYPES = {
    pa.large_string(): pa.string(),
    pa.string_view(): pa.string(),
    pa.large_binary(): pa.binary(),
    pa.binary_view(): pa.binary(),
}


def storage_schema(schema: pa.Schema) -> pa.Schema:
    """The schema a dataset is stored with: one spelling per logical type.

    Clients spell the same column differently (pandas sends `large_string`, polars
    `string_view`, others dictionary-encoded strings); storing one spelling lets an append
    from any client match the dataset, and keeps client metadata out of the lake.
    """
    return pa.schema([f.with_type(_storage_type(f.type)) for f in schema])


def _storage_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(t):
        return _storage_type(t.value_type)
    return _STORAGE_TYPES.get(t, t)


def promote(old: pa.DataType, new: pa.DataType) -> pa.DataType | None:
    """The narrowest type along the promotion rules that holds values of both; None if none."""
    if old.equals(new):
        return old
    if pa.types.is_null(new):
        return old
    if pa.types.is_null(old):
        return new
    if pa.types.is_integer(old) and pa.types.is_integer(new):
        return _wider_int(old, new)
    if _numeric(old) and _numeric(new):
        return _FLOAT
    if pa.types.is_timestamp(old) and pa.types.is_timestamp(new) and old.tz == new.tz:
        return old if _UNITS.index(old.unit) >= _UNITS.index(new.unit) else new
    if _scalar(old) and _scalar(new):
        return _STRING  # a number and a date, a bool and a float...: only text holds both
    return None


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _scalar(t: pa.DataType) -> bool:
    return not (pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t))


def _wider_int(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    signed_a, signed_b = pa.types.is_signed_integer(a), pa.types.is_signed_integer(b)
    if signed_a == signed_b:
        return a if a.bit_width >= b.bit_width else b
    unsigned, signed = (b, a) if signed_a else (a, b)
    if signed.bit_width > unsigned.bit_width:
        return signed
    return {8: pa.int16(), 16: pa.int32(), 32: pa.int64()}.get(unsigned.bit_width, _FLOAT)


def merge(dataset: pa.Schema, incoming: pa.Schema) -> pa.Schema:
    """The evolved schema: the dataset's columns, promoted where `incoming` needs it, then the
    columns only `incoming` has. Raises `InvalidInput` naming a column no type can hold."""
    by_name = {f.name.lower(): f for f in incoming}
    fields = []
    for f in dataset:
        other = by_name.pop(f.name.lower(), None)
        if other is None:
            fields.append(f.with_nullable(True))
            continue
        t = promote(f.type, other.type)
        if t is None:
            raise InvalidInput(f"column {f.name!r} cannot change from {f.type} to {other.type}, even with evolve=true")
        fields.append(f.with_type(t).with_nullable(True) if not t.equals(f.type) else f)
    fields.extend(f.with_nullable(True) for f in by_name.values())
    return pa.schema(fields)


@dataclass
class AppendPlan:
    """Brings batches appended to a dataset to the schema the new objects are written with.

    `target` is the dataset's schema, or with `evolve` the evolved one; it may widen further
    as batches come (a CSV column widening under evolution), and is final once the batches
    are exhausted.
    """

    dataset: pa.Schema
    evolve: bool
    target: pa.Schema = field(init=False)

    def __post_init__(self) -> None:
        self.target = self.dataset

    def check(self, incoming: pa.Schema) -> None:
        """Refuse, before anything is written, an incoming schema that cannot be appended."""
        if self.evolve:
            self.target = merge(self.target, incoming)
            return
        by_name = {f.name.lower(): f for f in incoming}
        for f in self.dataset:
            other = by_name.pop(f.name.lower(), None)
            if other is None:
                raise InvalidInput(f"cannot append: missing column {f.name!r} ({f.type}); send evolve=true to accept it as NULL")
            t = promote(f.type, other.type)
            to_text = pa.types.is_string(f.type) and not pa.types.is_string(other.type)
            if t is None or not t.equals(f.type) or to_text:  # values as text only by evolution
                raise InvalidInput(f"cannot append: column {f.name!r} has type {other.type}, expected {f.type}; send evolve=true to change the column's type")
        if by_name:
            extra = next(iter(by_name.values()))
            raise InvalidInput(f"cannot append: unexpected extra column {extra.name!r} ({extra.type}); send evolve=true to add it")

    def conform(self, batch: pa.RecordBatch, rows_before: int = 0) -> pa.RecordBatch:
        """`batch` in the target schema; a value that does not fit names its row and column."""
        if batch.schema.equals(self.target):
            return batch
        stored = storage_schema(batch.schema)
        if self.evolve:
            self.target = merge(self.target, stored)
        else:
            self.check(stored)
        return fit(batch, self.target, rows_before)


def fit(batch: pa.RecordBatch | pa.Table, schema: pa.Schema, rows_before: int = 0) -> pa.RecordBatch | pa.Table:
    """`batch` with `schema`'s columns: matched by name ignoring case, cast, NULL where absent."""
    index = {name.lower(): i for i, name in enumerate(batch.schema.names)}
    columns = []
    for f in schema:
        i = index.get(f.name.lower())
        if i is None:
            columns.append(pa.nulls(batch.num_rows, f.type))
            continue
        column = batch.column(i)
        columns.append(column if column.type.equals(f.type) else _cast(column, f, rows_before))
    if isinstance(batch, pa.Table):
        return pa.Table.from_arrays(columns, schema=schema)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _cast(column: pa.Array | pa.ChunkedArray, f: pa.Field, rows_before: int) -> pa.Array | pa.ChunkedArray:
    try:
        return pc.cast(column, f.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    values = column.to_pylist()
    for j, value in enumerate(values):
        try:
            pc.cast(pa.array([value], column.type), f.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            row = rows_before + j + 1
            raise InvalidInput(f"row {row}, column {f.name!r}: {str(value)[:100]!r} does not fit {f.type}; nothing was written", {"row": row, "column": f.name}) from None
    raise InvalidInput(f"column {f.name!r}: cannot convert {column.type} to {f.type}")
