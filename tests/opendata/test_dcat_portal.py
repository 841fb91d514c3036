"""DCAT-AP 3 metadata validated against the shipped SHACL shapes; the portal folder and ``lawlake open publish``."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re

import pandas as pd
import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import DCAT, RDF

from lawlake.opendata import dcat
from lawlake.opendata.datasets import BY_YEAR_CHARGE, BY_YEAR_PREFECTURE, DATASETS, DURATIONS, FUNNEL
from lawlake.opendata.policy import load_policy
from lawlake.opendata.portal import MARKER, PortalError, render

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
BASE = "https://open.example.org/justice/"


def _frames() -> dict[str, pd.DataFrame]:
    """Two rows per dataset: one published, one suppressed."""
    i = pd.array
    return {
        BY_YEAR_PREFECTURE: pd.DataFrame({"year": ["2023", "2023"], "region_code": ["330100", "330000"], "region_name": ["杭州市", "浙江省"],
                                          "region_level": ["prefecture", "province"], "cases": i([12, None], dtype="Int64"), "is_suppressed": [False, True]}),
        BY_YEAR_CHARGE: pd.DataFrame({"year": ["2023", "2023"], "level": ["total", "category"], "category_code": ["total", "CL-2-05"], "category_name": ["合计", "侵犯财产罪"],
                                      "charge_code": ["total", "total"], "charge_name": ["合计", "合计"], "cases": i([None, 12], dtype="Int64"), "is_suppressed": [True, False]}),
        FUNNEL: pd.DataFrame({"year": ["2023", "2023"], "region_code": ["330100", "330100"], "region_name": ["杭州市", "杭州市"], "region_level": ["prefecture", "prefecture"],
                              "stage": ["transferred", "filed"], "stage_order": [2, 1], "channel": ["all", "all"], "cases": i([None, 12], dtype="Int64"),
                              "is_suppressed": [True, False], "online_rate": [None, None], "online_rate_withheld": ["inputs_suppressed", "not_a_transfer"]}),
        DURATIONS: pd.DataFrame({"year": ["2023", "2023"], "stage": ["police", "review"], "stage_order": [1, 2], "cases": i([25, None], dtype="Int64"),
                                 "p25_days": [3.5, None], "median_days": [10.0, None], "p75_days": [20.25, None], "p90_days": [30.0, None], "is_suppressed": [False, True]}),
    }


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    folder = tmp_path_factory.mktemp("portal") / "site"
    frames = _frames()
    p = render(frames, folder, base_url=BASE, versions={n: 3 for n in frames}, policy=load_policy(10),
               issued={n: NOW for n in frames}, modified={n: NOW for n in frames})
    return p


def test_the_portal_folder_holds_every_dataset(portal):
    names = sorted(p.relative_to(portal.folder).as_posix() for p in portal.folder.rglob("*") if p.is_file())
    assert names == sorted([MARKER, "catalog.jsonld", "index.html"] + [f"{d.slug}/{f}" for d in DATASETS for f in ("data.csv", "dictionary.csv")])


def test_csv_shows_suppressed_counts_as_empty_and_sorts_by_key(portal):
    rows = list(csv.DictReader(io.StringIO((portal.folder / "case_funnel_by_year_prefecture" / "data.csv").read_text(encoding="utf-8"))))
    assert [(r["stage"], r["cases"], r["is_suppressed"]) for r in rows] == [("filed", "12", "false"), ("transferred", "", "true")]  # stage order, not alphabet


def test_catalog_conforms_and_describes_the_files(portal):
    text = portal.catalog.read_text(encoding="utf-8")
    conforms, report = dcat.validate(text)
    assert conforms, report
    g = Graph().parse(data=text, format="json-ld")
    assert len(set(g.subjects(RDF.type, DCAT.Dataset))) == 4
    downloads = sorted(str(o) for o in g.objects(None, DCAT.downloadURL))
    assert downloads == sorted(BASE + f"{d.slug}/{f}" for d in DATASETS for f in ("data.csv", "dictionary.csv"))  # absolute, under --base-url
    doc = json.loads(text)
    dist = next(n for n in doc["@graph"] if n.get("dcat:downloadURL", {}).get("@id") == BASE + "cases_by_year_prefecture/data.csv")
    data = (portal.folder / "cases_by_year_prefecture" / "data.csv").read_bytes()
    assert int(dist["dcat:byteSize"]["@value"]) == len(data)
    checksum = next(n for n in doc["@graph"] if n.get("@id") == dist["spdx:checksum"]["@id"])
    assert checksum["spdx:checksumValue"]["@value"] == hashlib.sha256(data).hexdigest()


def test_index_html_links_everything_and_loads_nothing_external(portal):
    page = portal.index.read_text(encoding="utf-8")
    assert 'href="catalog.jsonld"' in page and all(f'href="{d.slug}/data.csv"' in page for d in DATASETS)
    assert not re.search(r"<(script|link|img)\b", page) and "http" not in re.sub(r'href="https?://[^"]*"', "", page).replace("http://creativecommons", "")


def _graph_without(predicate: URIRef) -> Graph:
    g = dcat.catalog_graph(
        dcat.CatalogInfo(BASE, "t", "d", "p", "a@b.example", "http://creativecommons.org/licenses/by/4.0/", "330000", "浙江省", NOW, NOW),
        [dcat.DatasetEntry("open.x", "T", "D", ("k",), BASE + "index.html#x", "1", NOW, NOW, 2020, 2023,
                           dcat.DistributionFile("f", "d", BASE + "x/data.csv", "text/csv", "CSV", 10, "ab" * 32),
                           dcat.DistributionFile("g", "d", BASE + "x/dictionary.csv", "text/csv", "CSV", 5, "cd" * 32))],
    )
    for s, o in list(g.subject_objects(predicate)):
        g.remove((s, predicate, o))
    return g


@pytest.mark.parametrize(
    "predicate, shape_path",
    [
        (None, None),  # nothing removed: conforms
        (DCAT.downloadURL, "downloadURL"),  # a distribution without its download URL
        (URIRef("http://spdx.org/rdf/terms#checksum"), "checksum"),
        (DCAT.contactPoint, "contactPoint"),
        (URIRef("http://purl.org/dc/terms/publisher"), "publisher"),  # mandatory on the catalog
    ],
)
def test_shapes_accept_a_valid_catalog_and_reject_a_broken_one(predicate, shape_path):
    g = _graph_without(predicate) if predicate is not None else _graph_without(URIRef("urn:nothing"))
    conforms, report = dcat.validate(g)
    if shape_path is None:
        assert conforms, report
    else:
        assert not conforms and shape_path in report


def test_a_relative_download_url_is_rejected():
    g = _graph_without(URIRef("urn:nothing"))
    dist = next(g.subjects(DCAT.downloadURL, URIRef(BASE + "x/data.csv")))
    g.remove((dist, DCAT.downloadURL, URIRef(BASE + "x/data.csv")))
    g.add((dist, DCAT.downloadURL, URIRef("x/data.csv")))
    conforms, report = dcat.validate(g)
    assert not conforms and "downloadURL" in report


def test_the_portal_refuses_a_foreign_folder_and_a_relative_base_url(tmp_path):
    frames = _frames()
    kwargs = dict(versions={}, policy=load_policy(10), issued={n: NOW for n in frames}, modified={n: NOW for n in frames})
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(PortalError, match="not a previous portal"):
        render(frames, tmp_path / "mine", base_url=BASE, **kwargs)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(PortalError, match="absolute"):
        render(frames, tmp_path / "new", base_url="open/", **kwargs)
    assert not (tmp_path / "new").exists()


def test_lawlake_open_publish_writes_the_portal_from_the_lake(spark, tmp_path):
    from lawlake import cli, contracts, tables

    lake = tmp_path / "lake"
    for name, df in _frames().items():
        tables.write(contracts.dataframe(spark, df.astype(object).where(df.notna(), None).to_dict("records"), contracts.load(name)), tables.location(lake, name))
    rc = cli.main(["open", "publish", "--lake", str(lake), "--to", str(tmp_path / "site"), "--base-url", "https://data.example/open"])
    assert rc == 0
    text = (tmp_path / "site" / "catalog.jsonld").read_text(encoding="utf-8")
    assert dcat.validate(text)[0] and "https://data.example/open/cases_by_year_charge/data.csv" in text
    assert '"dcat:version": "0"' in text  # the published Delta version
    # published twice: replaced in place
    assert cli.main(["open", "publish", "--lake", str(lake), "--to", str(tmp_path / "site"), "--base-url", "https://data.example/open"]) == 0


def test_counts_read_back_as_floats_are_written_as_whole_numbers(tmp_path):
    frames = _frames()
    frames[BY_YEAR_PREFECTURE] = frames[BY_YEAR_PREFECTURE].astype({"cases": "float64"})  # what a Delta read of a nullable int gives
    p = render(frames, tmp_path / "site", base_url=BASE, versions={}, policy=load_policy(10), issued={n: NOW for n in frames}, modified={n: NOW for n in frames})
    lines = (p.folder / "cases_by_year_prefecture" / "data.csv").read_text(encoding="utf-8").splitlines()
    assert lines[1:] == ["2023,330100,杭州市,prefecture,12,false", "2023,330000,浙江省,province,,true"]
