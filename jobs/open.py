"""open: aggregate public datasets from gold — no personal data, sealed records out, small cells suppressed.

``open.cases_by_year_region_charge`` counts criminal cases filed by the police per
year, prefecture and charge. A case with any sealed record is left out entirely
(sealed data never reaches an open dataset), and a count below the minimum cell size
(``Settings.open_min_cell``, default 10) is published as suppressed (null). After the
gate passes, the dataset is also written as CSV with DCAT-style metadata and a data
dictionary under ``<lake>/open/_downloads/<dataset>/``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lawlake import contracts, tables
from lawlake.declarations import Params, Stage, Table
from lawlake.suites import Suite, check, suite_for

__all__ = ["DATASET", "build_cases_by_year_region_charge", "open_suite", "open_tables", "STAGE", "export"]

DATASET = "open.cases_by_year_region_charge"


def build_cases_by_year_region_charge(chain: DataFrame, regions: DataFrame, charges: DataFrame, *, min_cell: int) -> DataFrame:
    """One row per (filing year, prefecture, charge) with the number of cases, suppressed below ``min_cell``."""
    sealed_cases = chain.where(F.col("is_sealed")).select("police_case_id").distinct()
    cases = (
        chain.join(sealed_cases, "police_case_id", "left_anti")
        .select("police_case_id", "filed_on", "region_code", "charge_code")
        .dropDuplicates(["police_case_id"])
    )
    counts = cases.groupBy(
        F.year("filed_on").cast("int").alias("year"),
        F.concat(F.substring("region_code", 1, 4), F.lit("00")).alias("region_code"),
        "charge_code",
    ).agg(F.count(F.lit(1)).cast("int").alias("n"))
    return (
        counts.join(regions.select(F.col("code").alias("region_code"), F.col("name").alias("region_name")), "region_code")
        .join(charges.select("charge_code", F.col("name").alias("charge_name")), "charge_code")
        .select(
            "year", "region_code", "region_name", "charge_code", "charge_name",
            F.when(F.col("n") >= min_cell, F.col("n")).cast("int").alias("cases"),
            (F.col("n") < min_cell).alias("is_suppressed"),
        )
    )


def open_suite(name: str, *, min_cell: int) -> Suite:
    """The dataset's suite file plus the disclosure checks at the configured minimum cell size."""
    base = suite_for(name, contract=contracts.load(name))
    return base + Suite(name, (
        check("no_small_cells", f"SELECT * FROM {{batch}} WHERE cases IS NOT NULL AND cases < {int(min_cell)}"),
        check("suppressed_iff_null", "SELECT * FROM {batch} WHERE is_suppressed <> (cases IS NULL)"),
        check("no_more_cases_than_unsealed_gold",
              "SELECT * FROM (SELECT sum(cases) AS n FROM {batch}) c WHERE c.n > (SELECT count(DISTINCT police_case_id) FROM {gold.case_chain} WHERE NOT is_sealed)"),
    ))


def open_tables(params: Params) -> tuple[Table, ...]:
    return (
        Table(
            DATASET, build_cases_by_year_region_charge, inputs=("gold.case_chain", "reference.regions", "reference.charges"),
            params=("min_cell",), materialize=False, suite=open_suite(DATASET, min_cell=params.min_cell),
        ),
    )


STAGE = Stage("open", open_tables, doc=__doc__ or "")


def export(lake: Path, name: str, *, version: int, min_cell: int) -> Path:
    """Write a published open dataset as CSV + DCAT-style ``metadata.json`` + ``dictionary.csv``; return the folder."""
    from deltalake import DeltaTable

    contract = contracts.load(name)
    table = DeltaTable(str(tables.location(lake, name)), version=version).to_pandas()
    table = table.sort_values(["year", "region_code", "charge_code"])[contract.names]
    folder = Path(lake) / "open" / "_downloads" / name.split(".", 1)[1]
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data.csv"
    table.to_csv(data, index=False, encoding="utf-8", float_format="%.0f")
    with (folder / "dictionary.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["column", "type", "nullable", "description"])
        for c in contract.columns:
            w.writerow([c.name, c.type, c.nullable, c.description])
    meta = {
        "@type": "dcat:Dataset",
        "identifier": name,
        "title": "Criminal cases filed by year, prefecture and charge",
        "description": contract.grain + f". Counts below {min_cell} are suppressed (null, is_suppressed = true).",
        "publisher": "lawlake",
        "issued": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "version": str(version),
        "temporal": {"startDate": str(table["year"].min()), "endDate": str(table["year"].max())} if len(table) else None,
        "spatial": "GB/T 2260 prefectures",
        "license": "CC-BY-4.0",
        "accessRights": "public",
        "conformsTo": f"schemas/{name.replace('.', '/')}.yaml",
        "disclosureControl": {"minimumCellSize": min_cell, "sealedRecords": "excluded (Criminal Procedure Law art. 286)"},
        "distribution": [
            {"@type": "dcat:Distribution", "title": "data", "downloadURL": "data.csv", "mediaType": "text/csv",
             "byteSize": data.stat().st_size, "checksum": {"algorithm": "sha256", "value": hashlib.sha256(data.read_bytes()).hexdigest()},
             "rows": int(len(table))},
            {"@type": "dcat:Distribution", "title": "data dictionary", "downloadURL": "dictionary.csv", "mediaType": "text/csv"},
        ],
    }
    (folder / "metadata.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    return folder
