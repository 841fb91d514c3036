"""DCAT-AP 3 metadata for the open datasets, as JSON-LD built with rdflib, validated with pyshacl.

The shapes are ``quality/shapes/dcat-ap-3.ttl``: the mandatory and recommended
properties of DCAT-AP 3.0 for the catalogue, datasets, distributions, agents, contact
points, checksums, periods of time and licences (written from the SEMIC specification;
recommended properties are required here). Controlled vocabularies are the EU
Publications Office authority tables (data themes, frequencies, file types, languages,
countries) and IANA media types.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, OWL, RDF, SKOS, XSD

__all__ = ["DistributionFile", "DatasetEntry", "CatalogInfo", "catalog_graph", "to_jsonld", "validate", "SHAPES", "MetadataInvalid"]

SHAPES = Path(__file__).resolve().parents[2] / "quality" / "shapes" / "dcat-ap-3.ttl"
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
ADMS_PUBLISHER = Namespace("http://purl.org/adms/publishertype/")
EU = "http://publications.europa.eu/resource/authority/"
IANA = "https://www.iana.org/assignments/media-types/"
DCAT_VERSION = URIRef(str(DCAT) + "version")  # DCAT 3; not in rdflib's DCAT namespace object
CONTEXT = {
    "dcat": str(DCAT), "dct": str(DCTERMS), "foaf": str(FOAF), "vcard": str(VCARD), "spdx": str(SPDX),
    "skos": str(SKOS), "xsd": str(XSD), "owl": str(OWL),
}


class MetadataInvalid(ValueError):
    """The catalog does not conform to the DCAT-AP 3 shapes; the report names every violation."""


@dataclass(frozen=True)
class DistributionFile:
    """One downloadable file of a dataset."""

    title: str
    description: str
    url: str  # absolute download URL
    media_type: str  # e.g. text/csv
    file_type: str  # EU file-type code, e.g. CSV
    byte_size: int
    sha256: str


@dataclass(frozen=True)
class DatasetEntry:
    identifier: str
    title: str
    description: str
    keywords: tuple[str, ...]
    landing_url: str  # absolute: the portal page of the dataset (the distributions' access URL)
    version: str
    issued: dt.datetime
    modified: dt.datetime
    start_year: int
    end_year: int
    data: DistributionFile
    dictionary: DistributionFile


@dataclass(frozen=True)
class CatalogInfo:
    base_url: str
    title: str
    description: str
    publisher: str
    contact_email: str
    license: str
    province_code: str
    province_name: str
    issued: dt.datetime
    modified: dt.datetime


def _when(moment: dt.datetime) -> Literal:
    return Literal(moment.astimezone(dt.UTC).replace(microsecond=0).isoformat(), datatype=XSD.dateTime)


def catalog_graph(info: CatalogInfo, datasets: list[DatasetEntry]) -> Graph:
    """The catalog and its datasets, distributions and data dictionaries as an RDF graph."""
    g = Graph()
    for prefix, ns in CONTEXT.items():
        g.bind(prefix, ns)
    base = info.base_url
    catalog = URIRef(base + "catalog.jsonld")
    publisher = URIRef(base + "#publisher")
    g.add((publisher, RDF.type, FOAF.Agent))
    g.add((publisher, FOAF.name, Literal(info.publisher, lang="en")))
    g.add((publisher, DCTERMS.type, ADMS_PUBLISHER.RegionalAuthority))
    contact = URIRef(base + "#contact")
    g.add((contact, RDF.type, VCARD.Organization))
    g.add((contact, RDF.type, VCARD.Kind))
    g.add((contact, VCARD.fn, Literal(info.publisher)))
    g.add((contact, VCARD.hasEmail, URIRef(f"mailto:{info.contact_email}")))
    licence = URIRef(info.license)
    g.add((licence, RDF.type, DCTERMS.LicenseDocument))
    region = URIRef(base + f"#region-{info.province_code}")
    g.add((region, RDF.type, DCTERMS.Location))
    g.add((region, SKOS.prefLabel, Literal(info.province_name, lang="zh")))
    g.add((region, DCTERMS.identifier, Literal(f"GB/T 2260 {info.province_code}")))
    country = URIRef(EU + "country/CHN")
    g.add((country, RDF.type, DCTERMS.Location))
    theme = URIRef(EU + "data-theme/JUST")
    g.add((theme, RDF.type, SKOS.Concept))

    g.add((catalog, RDF.type, DCAT.Catalog))
    g.add((catalog, DCTERMS.title, Literal(info.title, lang="en")))
    g.add((catalog, DCTERMS.description, Literal(info.description, lang="en")))
    g.add((catalog, DCTERMS.publisher, publisher))
    g.add((catalog, FOAF.homepage, URIRef(base + "index.html")))
    g.add((catalog, DCTERMS.language, URIRef(EU + "language/ZHO")))
    g.add((catalog, DCTERMS.language, URIRef(EU + "language/ENG")))
    g.add((catalog, DCTERMS.license, licence))
    g.add((catalog, DCTERMS.issued, _when(info.issued)))
    g.add((catalog, DCTERMS.modified, _when(info.modified)))
    g.add((catalog, DCAT.themeTaxonomy, URIRef(EU + "data-theme")))
    g.add((catalog, DCTERMS.spatial, region))

    for d in datasets:
        ds = URIRef(base + f"catalog.jsonld#{d.identifier}")
        g.add((catalog, DCAT.dataset, ds))
        g.add((ds, RDF.type, DCAT.Dataset))
        g.add((ds, DCTERMS.identifier, Literal(d.identifier)))
        g.add((ds, DCTERMS.title, Literal(d.title, lang="en")))
        g.add((ds, DCTERMS.description, Literal(d.description, lang="en")))
        g.add((ds, DCTERMS.publisher, publisher))
        g.add((ds, DCAT.contactPoint, contact))
        for k in d.keywords:
            g.add((ds, DCAT.keyword, Literal(k, lang="en")))
        g.add((ds, DCAT.theme, theme))
        g.add((ds, DCTERMS.spatial, region))
        g.add((ds, DCTERMS.spatial, country))
        period = BNode()
        g.add((ds, DCTERMS.temporal, period))
        g.add((period, RDF.type, DCTERMS.PeriodOfTime))
        g.add((period, DCAT.startDate, Literal(f"{d.start_year}-01-01", datatype=XSD.date)))
        g.add((period, DCAT.endDate, Literal(f"{d.end_year}-12-31", datatype=XSD.date)))
        g.add((ds, DCAT.temporalResolution, Literal("P1Y", datatype=XSD.duration)))
        g.add((ds, DCTERMS.issued, _when(d.issued)))
        g.add((ds, DCTERMS.modified, _when(d.modified)))
        g.add((ds, DCTERMS.accrualPeriodicity, URIRef(EU + "frequency/IRREG")))
        g.add((ds, DCAT_VERSION, Literal(d.version)))
        g.add((ds, DCAT.landingPage, URIRef(d.landing_url)))
        dictionary_doc = URIRef(d.dictionary.url)
        g.add((dictionary_doc, RDF.type, DCTERMS.Standard))
        g.add((dictionary_doc, DCTERMS.title, Literal(f"Data dictionary of {d.identifier}", lang="en")))
        g.add((ds, DCTERMS.conformsTo, dictionary_doc))
        for kind, f in (("csv", d.data), ("dictionary", d.dictionary)):
            dist = URIRef(base + f"catalog.jsonld#{d.identifier}-{kind}")
            g.add((ds, DCAT.distribution, dist))
            g.add((dist, RDF.type, DCAT.Distribution))
            g.add((dist, DCTERMS.title, Literal(f.title, lang="en")))
            g.add((dist, DCTERMS.description, Literal(f.description, lang="en")))
            g.add((dist, DCAT.accessURL, URIRef(d.landing_url)))
            g.add((dist, DCAT.downloadURL, URIRef(f.url)))
            g.add((dist, DCTERMS.format, URIRef(EU + f"file-type/{f.file_type}")))
            g.add((dist, DCAT.mediaType, URIRef(IANA + f.media_type)))
            g.add((dist, DCAT.byteSize, Literal(f.byte_size, datatype=XSD.nonNegativeInteger)))
            g.add((dist, DCTERMS.license, licence))
            g.add((dist, DCTERMS.issued, _when(d.issued)))
            g.add((dist, DCTERMS.modified, _when(d.modified)))
            checksum = BNode()
            g.add((dist, SPDX.checksum, checksum))
            g.add((checksum, RDF.type, SPDX.Checksum))
            g.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
            g.add((checksum, SPDX.checksumValue, Literal(f.sha256, datatype=XSD.hexBinary)))
            if kind == "csv":
                g.add((dist, DCTERMS.conformsTo, dictionary_doc))
    return g


def to_jsonld(g: Graph) -> str:
    """The graph as compact JSON-LD with the catalog's prefixes as context."""
    return g.serialize(format="json-ld", context=CONTEXT, indent=2, sort_keys=True)


def validate(data: Graph | str, *, shapes: Path = SHAPES) -> tuple[bool, str]:
    """(conforms, report text) of a graph (or JSON-LD text) against the DCAT-AP 3 shapes."""
    import pyshacl

    graph = data if isinstance(data, Graph) else Graph().parse(data=data, format="json-ld")
    conforms, _, report = pyshacl.validate(graph, shacl_graph=str(shapes), shacl_graph_format="turtle", inference="none", abort_on_first=False, allow_warnings=False)
    return bool(conforms), str(report)
