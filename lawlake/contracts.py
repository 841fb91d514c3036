"""Data contracts: one YAML file per table under ``schemas/<zone>/``, enforced before every write.

A contract states the grain, every column (type, nullability, PII class, description,
optional accepted values) and the key. :func:`enforce` refuses a DataFrame whose
columns or types differ from the contract with a :class:`ContractError` naming each
difference, so nothing is written; nullability, keys and accepted values are data
rules, checked by the table's gate (see ``quality/``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from lawlake.config import SCHEMAS_DIR
from lawlake.fileio import read_yaml
from lawlake.tables import parse_name

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["CODE_LISTS", "Column", "Contract", "ContractError", "load", "parse", "enforce", "arrow_schema", "arrow_rows", "dataframe", "PII_CLASSES", "TYPES"]

PII_CLASSES = ("none", "quasi", "direct", "sensitive")
TYPES = ("string", "int", "bigint", "double", "boolean", "date", "timestamp", "array<string>")


class ContractError(ValueError):
    """A table that does not match its contract; nothing was written."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    pii: str
    description: str
    accepted_values: tuple | None = None
    code_list: str | None = None  # a reference list in schemas/reference/ the values must belong to


CODE_LISTS = ("regions", "charges")


@dataclass(frozen=True)
class Contract:
    table: str
    grain: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = field(default_factory=tuple)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.table} has no column {name!r}")

    def ddl(self) -> str:
        """The contract as a Spark DDL schema string."""
        return ", ".join(f"`{c.name}` {c.type}" for c in self.columns)


def contract_path(table: str) -> Path:
    parts = parse_name(table)
    if parts[0] == "share":  # every partner's extract of a table shares one contract shape per policy
        raise ContractError("share tables take their contract from the partner policy (lawlake.policy)")
    return SCHEMAS_DIR / parts[0] / f"{parts[-1]}.yaml"


@cache
def load(table: str) -> Contract:
    """The contract of a logical table name, validated."""
    path = contract_path(table)
    if not path.exists():
        raise ContractError(f"no contract for {table}: expected {path}")
    return parse(read_yaml(path), source=str(path))


def parse(doc: dict, *, source: str = "<contract>") -> Contract:
    """A contract from its YAML document, refusing unknown types, PII classes and keys."""
    problems = []
    for required in ("table", "grain", "columns"):
        if required not in doc:
            problems.append(f"missing '{required}'")
    if problems:
        raise ContractError(f"{source}: " + "; ".join(problems))
    cols = []
    for raw in doc["columns"]:
        name = raw.get("name")
        typ = raw.get("type")
        pii = raw.get("pii", "none")
        if typ not in TYPES:
            problems.append(f"column {name}: type {typ!r} not one of {TYPES}")
        if pii not in PII_CLASSES:
            problems.append(f"column {name}: pii {pii!r} not one of {PII_CLASSES}")
        if not raw.get("description"):
            problems.append(f"column {name}: no description")
        accepted = raw.get("accepted_values")
        code_list = raw.get("code_list")
        if code_list is not None and code_list not in CODE_LISTS:
            problems.append(f"column {name}: code_list {code_list!r} not one of {CODE_LISTS}")
        cols.append(
            Column(
                name=name,
                type=typ,
                nullable=bool(raw.get("nullable", True)),
                pii=pii,
                description=raw.get("description", ""),
                accepted_values=tuple(accepted) if accepted else None,
                code_list=code_list,
            )
        )
    names = [c.name for c in cols]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(f"duplicate columns {dupes}")
    key: tuple[str, ...] = tuple(doc.get("primary_key") or ())
    missing_key = [k for k in key if k not in names]
    if missing_key:
        problems.append(f"primary key names unknown columns {missing_key}")
    if problems:
        raise ContractError(f"{source}: " + "; ".join(problems))
    return Contract(table=doc["table"], grain=doc["grain"], columns=tuple(cols), primary_key=key)


def enforce(df: DataFrame, contract: Contract) -> DataFrame:
    """``df`` with its columns in contract order, or :class:`ContractError` naming every mismatch."""
    actual = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    expected = {c.name: c.type for c in contract.columns}
    missing = [n for n in expected if n not in actual]
    extra = [n for n in actual if n not in expected]
    mistyped = [f"{n}: {actual[n]} (contract: {expected[n]})" for n in expected if n in actual and actual[n] != expected[n]]
    if missing or extra or mistyped:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if extra:
            parts.append(f"columns not in the contract {extra}")
        if mistyped:
            parts.append("wrong types " + "; ".join(mistyped))
        raise ContractError(f"{contract.table} breaks its contract: " + "; ".join(parts))
    return df.select(*contract.names)


_ARROW = {
    "string": "string",
    "int": "int32",
    "bigint": "int64",
    "double": "float64",
    "boolean": "bool",
    "date": "date32",
}


def arrow_schema(contract: Contract):
    """The contract as a pyarrow schema (timestamps in UTC)."""
    import pyarrow as pa

    fields = []
    for c in contract.columns:
        if c.type == "timestamp":
            typ = pa.timestamp("us", tz="UTC")
        elif c.type == "array<string>":
            typ = pa.list_(pa.string())
        else:
            typ = pa.type_for_alias(_ARROW[c.type])
        fields.append(pa.field(c.name, typ, nullable=True))
    return pa.schema(fields)


LOCAL_ROWS_LIMIT = 32 << 20  # bytes of Arrow data sent inline; Spark Connect refuses a message over 128 MB


def arrow_rows(rows: list[dict], contract: Contract, *, spill_to: Path | None = None, limit: int | None = None):
    """Python rows as an Arrow table typed by the contract — or, over ``limit`` bytes
    (default :data:`LOCAL_ROWS_LIMIT`) with a ``spill_to`` folder, written there as Parquet
    and that folder returned. Needs no engine: gather's worker processes call it."""
    import pyarrow as pa

    table = pa.Table.from_pylist(rows, schema=arrow_schema(contract))
    if spill_to is None or table.nbytes <= (LOCAL_ROWS_LIMIT if limit is None else limit):
        return table
    import pyarrow.parquet as pq

    spill_to.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, spill_to / "rows.parquet")
    return spill_to


def dataframe(spark, rows, contract: Contract, *, spill_to: Path | None = None):
    """A Spark DataFrame of rows typed by the contract (via Arrow).

    ``rows``: Python rows, or what :func:`arrow_rows` made of them (an Arrow table, or
    the folder of its Parquet). Spark Connect sends a local table to the engine in one
    message, refused over 128 MB (scale 400's police suspects: 264 MB). Rows of more
    than :data:`LOCAL_ROWS_LIMIT` bytes are written as Parquet to ``spill_to`` (a
    folder the engine reads, under the lake) and read from there instead.
    """
    if isinstance(rows, list):
        rows = arrow_rows(rows, contract, spill_to=spill_to)
    if isinstance(rows, Path):
        return spark.read.parquet(str(rows))
    if rows.num_rows == 0:  # Spark Connect cannot take a schema from an empty Arrow table
        return spark.createDataFrame([], schema=contract.ddl())
    if rows.schema != arrow_schema(contract):
        raise ContractError(f"{contract.table}: Arrow rows do not have the contract's schema")
    return spark.createDataFrame(rows)
