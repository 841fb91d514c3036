"""Validate OpenLineage events against the vendored specification (tests/openlineage_spec/): the event, and each facet the spec defines."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SPEC = Path(__file__).parent / "openlineage_spec"


def _registry() -> tuple[Registry, dict, dict[str, dict]]:
    core = json.loads((SPEC / "OpenLineage.json").read_text())
    facets = {p.stem: json.loads(p.read_text()) for p in (SPEC / "facets").glob("*.json")}
    resources = [(core["$id"], Resource.from_contents(core))] + [(f["$id"], Resource.from_contents(f)) for f in facets.values()]
    return Registry().with_resources(resources), core, facets


REGISTRY, CORE, FACETS = _registry()
EVENT = Draft202012Validator({"$ref": CORE["$id"]}, registry=REGISTRY)


def validate(event: dict) -> list[str]:
    """Every violation of the spec in one event: the core schema, then each facet whose _schemaURL names a spec facet."""
    errors = [f"event: {e.message}" for e in EVENT.iter_errors(event)]
    facet_maps = [event.get("run", {}).get("facets") or {}, event.get("job", {}).get("facets") or {}]
    for d in (event.get("inputs") or []) + (event.get("outputs") or []):
        facet_maps += [d.get("facets") or {}, d.get("inputFacets") or {}, d.get("outputFacets") or {}]
    for facets in facet_maps:
        for key, facet in facets.items():
            url = facet.get("_schemaURL", "") if isinstance(facet, dict) else ""
            name = url.split("#")[0].rsplit("/", 1)[-1].removesuffix(".json")
            if not url.startswith("https://openlineage.io/spec/facets/") or name not in FACETS:
                continue  # a producer's own facet (Airflow's, lawlake's builtFrom): the core schema checked its _producer/_schemaURL
            schema = {"$ref": f"{FACETS[name]['$id']}#/$defs/{name}"}
            errors += [f"{key} ({name}): {e.message}" for e in Draft202012Validator(schema, registry=REGISTRY).iter_errors(facet)]
    return errors
