"""Inline rows for job tests: only the fields a test is about, the rest filled in by the table's contract."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import TYPE_CHECKING

from lawlake import contracts
from lawlake.rules import id_numbers

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

INGESTED_AT = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

# Filled in where a contract column is not nullable and a test does not care about it.
_DEFAULTS = {
    "is_id_upgraded": False,
    "is_legacy_number": False,
    "is_minor_at_offense": False,
    "is_sealed": False,
    "seal_status": "not_sealed",
    "is_withheld": False,
}


def id_number(region: str, birth: str, seq: str) -> str:
    """A valid 18-character identity number (GB 11643-1999) for a region, YYYYMMDD birth date and 3-digit sequence."""
    first17 = region + birth + seq
    return first17 + id_numbers.check_character(first17)


def bronze(spark: SparkSession, table: str, rows: list[dict]) -> DataFrame:
    """Bronze rows with their lineage columns filled (one file, one batch; a distinct record hash per row).

    A row may set ``_ingested_at`` to play a late delivery.
    """
    contract = contracts.load(table)
    full = []
    for i, row in enumerate(rows, start=1):
        record = {n: None for n in contract.names}
        record.update(
            _source=table.split(".", 1)[1],
            _source_file=f"{table}.test",
            _row_number=i,
            _record_hash=hashlib.sha256(json.dumps(row, ensure_ascii=False, sort_keys=True, default=str).encode()).hexdigest(),
            _batch_id="test",
            _ingested_at=INGESTED_AT,
        )
        record.update(row)
        full.append(record)
    return contracts.dataframe(spark, full, contract)


def table(spark: SparkSession, name: str, rows: list[dict]) -> DataFrame:
    """Rows of a silver or gold table: unset columns null, or a harmless default where the contract needs a value."""
    contract = contracts.load(name)
    full = []
    for i, row in enumerate(rows, start=1):
        record = {n: _DEFAULTS.get(n) for n in contract.names}
        if "_record_hash" in record:
            record["_record_hash"] = f"hash{i}"
        record.update(row)
        full.append(record)
    return contracts.dataframe(spark, full, contract)
