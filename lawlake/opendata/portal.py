"""The open-data portal folder: CSV files, data dictionaries, the DCAT-AP 3 catalog and a browsable ``index.html``.

Layout (self-contained; every URL in the catalog is absolute, under ``base_url``)::

    index.html                         plain HTML, no external assets
    catalog.jsonld                     DCAT-AP 3 (validated against quality/shapes/dcat-ap-3.ttl before writing)
    <dataset>/data.csv                 the published table (suppressed counts empty, is_suppressed true)
    <dataset>/dictionary.csv           column, type, nullable, description

A folder that is not empty must be a previous portal (it holds ``.lawlake-portal``):
anything else is refused rather than overwritten. The new portal is written beside it
and swapped in, so a failed validation leaves the old one intact.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import html
import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lawlake import contracts, tables
from lawlake.opendata import dcat
from lawlake.opendata.datasets import BY_YEAR_CHARGE, DATASETS, DURATIONS

__all__ = ["portal_location", "Portal", "PortalError", "render", "publish", "read_published", "MARKER"]

MARKER = ".lawlake-portal"
LEVEL_ORDER = {"total": 0, "category": 1, "charge": 2, "province": 1, "prefecture": 0}


def portal_location(lake: Path) -> Path:
    """Where the open stage's ``after_publish`` writes the portal folder (``make run`` prints it)."""
    return Path(lake) / "open" / "_portal"


class PortalError(ValueError):
    """The portal cannot be written: a bad base URL, a foreign target folder, or an unpublished dataset."""


@dataclass(frozen=True)
class Portal:
    folder: Path
    catalog: Path
    index: Path
    datasets: tuple[str, ...]
    conforms: bool


def _base(url: str) -> str:
    if not url.startswith(("http://", "https://", "file://")):
        raise PortalError(f"--base-url must be an absolute http(s):// or file:// URL, got {url!r}")
    return url if url.endswith("/") else url + "/"


def _typed(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Columns as their contract types (a Delta read gives nullable ints as floats)."""
    frame = df.copy()
    for c in contracts.load(name).columns:
        if c.type in ("int", "bigint"):
            frame[c.name] = pd.to_numeric(frame[c.name]).round().astype("Int64")
        elif c.type == "boolean":
            frame[c.name] = frame[c.name].astype(bool)
        elif c.type == "double":
            frame[c.name] = pd.to_numeric(frame[c.name]).astype("float64")
    return frame


def _sorted(name: str, df: pd.DataFrame) -> pd.DataFrame:
    key = list(contracts.load(name).primary_key)
    frame = _typed(name, df)
    order = []
    for col in key:
        if col in ("region_code",):
            frame["_lvl"] = frame["region_level"].map(LEVEL_ORDER)
            order += ["_lvl", col]
        elif col == "category_code" and name == BY_YEAR_CHARGE:
            frame["_cat"] = frame["category_code"].eq("total")
            frame["_lvl"] = frame["level"].map(LEVEL_ORDER)
            order += ["_cat", col, "_lvl"]
        elif col == "stage":
            order.append("stage_order")
        else:
            order.append(col)
    frame = frame.sort_values(order, kind="stable")
    return frame[contracts.load(name).names].reset_index(drop=True)


def _csv_bytes(df: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == bool or str(out[col].dtype) == "boolean":
            out[col] = out[col].map({True: "true", False: "false"})
        elif pd.api.types.is_integer_dtype(out[col]):
            out[col] = out[col].astype("Int64")
    out.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


def _dictionary_bytes(name: str) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["column", "type", "nullable", "description"])
    for c in contracts.load(name).columns:
        w.writerow([c.name, c.type, str(c.nullable).lower(), c.description])
    return buf.getvalue().encode("utf-8")


def _years(df: pd.DataFrame) -> tuple[int, int]:
    ys = [int(y) for y in df["year"] if str(y).isdigit()]
    return (min(ys), max(ys)) if ys else (0, 0)


def render(frames: dict[str, pd.DataFrame], to: Path, *, base_url: str, versions: dict[str, int], policy,
           issued: dict[str, dt.datetime], modified: dict[str, dt.datetime]) -> Portal:
    """Write the portal folder for these published frames; raises :class:`dcat.MetadataInvalid` (and writes nothing) if the catalog fails its shapes."""
    base = _base(base_url)
    to = Path(to)
    if to.exists() and (not to.is_dir() or (any(to.iterdir()) and not (to / MARKER).is_file())):
        raise PortalError(f"refusing to write the portal into {to}: it is not empty and is not a previous portal (no {MARKER})")
    to.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".portal-", dir=to.parent))
    work.chmod(0o755)  # mkdtemp makes it private; a portal is served to the public
    try:
        entries = []
        pages = []
        for ds in DATASETS:
            if ds.name not in frames:
                raise PortalError(f"{ds.name} is not published")
            df = _sorted(ds.name, frames[ds.name])
            folder = work / ds.slug
            folder.mkdir()
            data, dictionary = _csv_bytes(df), _dictionary_bytes(ds.name)
            (folder / "data.csv").write_bytes(data)
            (folder / "dictionary.csv").write_bytes(dictionary)
            start, end = _years(df)
            landing = base + f"index.html#{ds.slug}"
            disclosure = (f" Counts below {policy.min_cell} are suppressed, with complementary suppressions so that no suppressed count can be "
                          f"recomputed from any published figure of any of these datasets; sealed and seal-pending cases are withheld."
                          if ds.name != DURATIONS else f" A row is published only with at least {policy.min_duration_cases} cases; sealed and seal-pending cases are withheld.")
            entries.append(dcat.DatasetEntry(
                identifier=ds.name, title=ds.title, description=ds.description + disclosure, keywords=ds.keywords, landing_url=landing,
                version=str(versions.get(ds.name, "")), issued=issued[ds.name], modified=modified[ds.name], start_year=start, end_year=end,
                data=dcat.DistributionFile(f"{ds.title} (CSV)", "The table as CSV, UTF-8; a suppressed count is empty.", base + f"{ds.slug}/data.csv",
                                           "text/csv", "CSV", len(data), hashlib.sha256(data).hexdigest()),
                dictionary=dcat.DistributionFile(f"Data dictionary of {ds.name} (CSV)", "Every column: name, type, nullability, description.",
                                                 base + f"{ds.slug}/dictionary.csv", "text/csv", "CSV", len(dictionary), hashlib.sha256(dictionary).hexdigest()),
            ))
            pages.append((ds, df, len(data), hashlib.sha256(data).hexdigest()))
        info = dcat.CatalogInfo(
            base_url=base, title="lawlake open justice data", description="Aggregate open datasets of criminal case handling in Zhejiang, with disclosure control.",
            publisher=policy.publisher, contact_email=policy.contact_email, license=policy.license, province_code=policy.province, province_name="浙江省",
            issued=min(issued.values()), modified=max(modified.values()),
        )
        graph = dcat.catalog_graph(info, entries)
        text = dcat.to_jsonld(graph)
        conforms, report = dcat.validate(text)
        if not conforms:
            raise dcat.MetadataInvalid(report)
        (work / "catalog.jsonld").write_text(text, encoding="utf-8")
        (work / "index.html").write_text(_index_html(pages, policy, info), encoding="utf-8")
        (work / MARKER).write_text("written by lawlake open publish\n", encoding="utf-8")
        if to.exists():
            old = to.with_name(to.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(to, old)
            os.replace(work, to)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, to)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Portal(folder=to, catalog=to / "catalog.jsonld", index=to / "index.html", datasets=tuple(d.name for d in DATASETS), conforms=True)


def _index_html(pages, policy, info) -> str:
    e = html.escape
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(info.title)}</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}table{border-collapse:collapse;font-size:90%}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}.s{color:#999}</style></head><body>",
        f"<h1>{e(info.title)}</h1>", f"<p>{e(info.description)} Publisher: {e(info.publisher)}. Licence: <a href=\"{e(info.license)}\">{e(info.license)}</a>.</p>",
        '<p>Metadata: <a href="catalog.jsonld">catalog.jsonld</a> (DCAT-AP 3, JSON-LD).</p>',
        "<h2>Disclosure control</h2>",
        f"<p>Cases whose records are sealed or whose sealing is pending (Criminal Procedure Law art. 286) are left out of every table. "
        f"A count below {policy.min_cell} is suppressed (shown as ·), and further counts are suppressed so that no suppressed count can be "
        f"recomputed, or narrowed below its protection interval, from the published counts, margins and totals of all tables together; "
        f"a linear-programming attack proves it before publication. Zeros are {'published' if policy.zeros_published else 'suppressed like small counts'}. "
        f"Duration percentiles are published for at least {policy.min_duration_cases} cases.</p>",
        "<h2>Datasets</h2><ul>",
    ]
    for ds, _, _size, _ in pages:
        parts.append(f'<li><a href="#{e(ds.slug)}">{e(ds.title)}</a></li>')
    parts.append("</ul>")
    for ds, df, size, sha in pages:
        parts += [
            f'<h2 id="{e(ds.slug)}">{e(ds.title)}</h2>', f"<p>{e(ds.description)}</p>",
            f'<p><a href="{e(ds.slug)}/data.csv">data.csv</a> ({size:,} bytes, SHA-256 <code>{sha}</code>) · '
            f'<a href="{e(ds.slug)}/dictionary.csv">dictionary.csv</a> · identifier <code>{e(ds.name)}</code></p>',
            "<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in df.columns) + "</tr>",
        ]
        for row in df.itertuples(index=False):
            cells = []
            for v in row:
                if v is None or v is pd.NA or (isinstance(v, float) and pd.isna(v)):
                    cells.append('<td class="s">·</td>')
                else:
                    cells.append(f"<td>{e(str(v))}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def read_published(lake: Path, versions: dict[str, int] | None = None) -> tuple[dict[str, pd.DataFrame], dict[str, int], dict[str, dt.datetime], dict[str, dt.datetime]]:
    """Every open dataset at its published version (or ``versions``): frames, versions, first and last publication times."""
    from deltalake import DeltaTable

    frames, vers, issued, modified = {}, {}, {}, {}
    for ds in DATASETS:
        path = tables.location(lake, ds.name)
        if not tables.exists(path):
            raise PortalError(f"{ds.name} is not published in {lake}: run the open stage first")
        version = (versions or {}).get(ds.name)
        t = DeltaTable(str(path), version=version) if version is not None else DeltaTable(str(path))
        frames[ds.name] = t.to_pandas()
        vers[ds.name] = t.version()
        history = {h["version"]: h["timestamp"] for h in t.history()}
        stamp = lambda ms: dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)  # noqa: E731
        issued[ds.name] = stamp(history[min(history)])
        modified[ds.name] = stamp(history.get(vers[ds.name], max(history.values())))
    return frames, vers, issued, modified


def publish(lake: Path, to: Path, *, base_url: str, policy, versions: dict[str, int] | None = None) -> Portal:
    """Write the portal folder for the open datasets published in ``lake``."""
    frames, vers, issued, modified = read_published(Path(lake), versions)
    return render(frames, Path(to), base_url=base_url, versions=vers, policy=policy, issued=issued, modified=modified)
