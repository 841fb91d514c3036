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
from lawlake.config import Settings
from lawlake.pipeline import Candidate, StageContext, StageOutput

__all__ = ["DATASET", "build_cases_by_year_region_charge", "run", "checks", "after_publish", "export"]

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


def checks(name: str, settings: Settings) -> dict:
    """Disclosure checks with the configured minimum cell size."""
    return {
        "checks": [
            {"name": "no_small_cells", "sql": f"SELECT * FROM {{candidate}} WHERE cases IS NOT NULL AND cases < {int(settings.open_min_cell)}"},
            {"name": "suppressed_iff_null", "sql": "SELECT * FROM {candidate} WHERE is_suppressed <> (cases IS NULL)"},
            {"name": "no_more_cases_than_unsealed_gold",
             "sql": "SELECT * FROM (SELECT sum(cases) AS n FROM {candidate}) c WHERE c.n > (SELECT count(DISTINCT police_case_id) FROM {gold.case_chain} WHERE NOT is_sealed)"},
        ]
    }


def run(ctx: StageContext) -> StageOutput:
    from lawlake.rules import reference

    chain = ctx.read("gold.case_chain")
    df = build_cases_by_year_region_charge(
        chain,
        reference.reference_dataframe(ctx.spark, "regions"),
        reference.reference_dataframe(ctx.spark, "charges"),
        min_cell=ctx.settings.open_min_cell,
    )
    out = StageOutput()
    out.candidates.append(Candidate(DATASET, ctx.write_candidate(df, DATASET)))
    return out


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


def after_publish(ctx: StageContext, published: dict) -> None:
    """Only a gated, published version is exported for download."""
    for name, info in published.items():
        export(ctx.lake, name, version=info["version"], min_cell=ctx.settings.open_min_cell)
