"""open: public counts with sealed cases left out and small cells suppressed; the CSV export and its metadata."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json

import pytest

from jobs import open as open_job
from lawlake import contracts, tables
from lawlake.rules import reference

from .frames import table

D = dt.date
MIN_CELL = 2


def _chain(chain_id, case, region, charge, filed_on, *, sealed=False):
    return dict(chain_id=chain_id, police_case_id=case, person_key=f"P{chain_id}", region_code=region, charge_code=charge, filed_on=filed_on,
                is_sealed=sealed, is_minor_at_offense=sealed)


CHAIN = [
    _chain("c1", "A1", "330102", "C264", D(2023, 1, 3)),  # A1 has two suspects: one case
    _chain("c2", "A1", "330102", "C264", D(2023, 1, 3)),
    _chain("c3", "A2", "330105", "C264", D(2023, 6, 1)),  # another Hangzhou county, same prefecture
    _chain("c4", "A3", "330203", "C264", D(2023, 2, 1)),  # Ningbo
    _chain("c5", "A4", "330102", "C264", D(2023, 3, 1)),  # A4: one suspect's record is sealed, so the whole case is out
    _chain("c6", "A4", "330102", "C264", D(2023, 3, 1), sealed=True),
    _chain("c7", "A5", "330106", "C264", D(2022, 5, 1)),  # another year
    _chain("c8", "A6", "330102", "C266", D(2023, 4, 1)),  # another charge
]


@pytest.fixture(scope="module")
def cells(spark):
    df = open_job.build_cases_by_year_region_charge(
        table(spark, "gold.case_chain", CHAIN),
        reference.reference_dataframe(spark, "regions"),
        reference.reference_dataframe(spark, "charges"),
        min_cell=MIN_CELL,
    )
    rows = contracts.enforce(df, contracts.load(open_job.DATASET)).collect()
    return {(r["year"], r["region_code"], r["charge_code"]): r.asDict() for r in rows}


@pytest.mark.parametrize(
    "cell, expected",
    [
        # A1 (two chains) + A2 = 2 distinct cases in Hangzhou; A4 left out for its sealed record: at the minimum, published
        ((2023, "330100", "C264"), ("杭州市", "盗窃罪", 2, False)),
        # one case: below the minimum, suppressed
        ((2023, "330200", "C264"), ("宁波市", "盗窃罪", None, True)),
        ((2022, "330100", "C264"), ("杭州市", "盗窃罪", None, True)),
        ((2023, "330100", "C266"), ("杭州市", "诈骗罪", None, True)),
    ],
)
def test_cases_are_counted_per_year_prefecture_and_charge(cells, cell, expected):
    row = cells[cell]
    assert (row["region_name"], row["charge_name"], row["cases"], row["is_suppressed"]) == expected


def test_no_other_cells(cells):
    assert len(cells) == 4


def test_a_case_with_a_sealed_record_is_left_out_even_below_the_minimum(spark):
    # alone in its cell: no row at all, not even a suppressed one (a suppressed cell still tells a case exists)
    df = open_job.build_cases_by_year_region_charge(
        table(spark, "gold.case_chain", [_chain("s1", "S1", "330302", "C263", D(2023, 1, 1), sealed=True), _chain("s2", "S1", "330302", "C263", D(2023, 1, 1))]),
        reference.reference_dataframe(spark, "regions"),
        reference.reference_dataframe(spark, "charges"),
        min_cell=1,
    )
    assert df.count() == 0


@pytest.fixture(scope="module")
def exported(spark, tmp_path_factory):
    """The dataset published twice (v0: every cell, v1: one cell), then v0 exported."""
    lake = tmp_path_factory.mktemp("open") / "lake"
    contract = contracts.load(open_job.DATASET)
    df = open_job.build_cases_by_year_region_charge(
        table(spark, "gold.case_chain", CHAIN),
        reference.reference_dataframe(spark, "regions"),
        reference.reference_dataframe(spark, "charges"),
        min_cell=MIN_CELL,
    )
    path = tables.location(lake, open_job.DATASET)
    tables.write(contracts.enforce(df, contract), path)
    tables.write(contracts.enforce(df, contract).where("NOT is_suppressed"), path)
    folder = open_job.export(lake, open_job.DATASET, version=0, min_cell=MIN_CELL)
    return folder, contract


def test_export_writes_the_given_version_as_csv(exported):
    folder, contract = exported
    rows = list(csv.DictReader(io.StringIO((folder / "data.csv").read_text(encoding="utf-8"))))
    assert list(rows[0]) == contract.names
    assert [(r["year"], r["region_code"], r["charge_code"], r["cases"], r["is_suppressed"]) for r in rows] == [
        ("2022", "330100", "C264", "", "True"),  # suppressed: an empty cell, not 0
        ("2023", "330100", "C264", "2", "False"),  # a whole number, not 2.0
        ("2023", "330100", "C266", "", "True"),
        ("2023", "330200", "C264", "", "True"),
    ]  # version 0, sorted by year, region, charge; version 1 has one row


def test_export_metadata_matches_the_file(exported):
    folder, _ = exported
    meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    data = folder / "data.csv"
    (dist, dictionary) = meta["distribution"]
    assert dist["downloadURL"] == "data.csv" and dictionary["downloadURL"] == "dictionary.csv"
    assert dist["checksum"] == {"algorithm": "sha256", "value": hashlib.sha256(data.read_bytes()).hexdigest()}
    assert dist["byteSize"] == data.stat().st_size
    assert dist["rows"] == len(data.read_text(encoding="utf-8").splitlines()) - 1 == 4
    assert (meta["identifier"], meta["version"], meta["temporal"]) == (open_job.DATASET, "0", {"startDate": "2022", "endDate": "2023"})
    assert meta["disclosureControl"]["minimumCellSize"] == MIN_CELL


def test_export_dictionary_lists_every_column(exported):
    folder, contract = exported
    rows = list(csv.DictReader(io.StringIO((folder / "dictionary.csv").read_text(encoding="utf-8"))))
    assert [(r["column"], r["type"], r["description"]) for r in rows] == [(c.name, c.type, c.description) for c in contract.columns]
