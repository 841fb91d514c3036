"""Generate the simulated agencies' source systems, with the ground truth beside them.

``generate(out_dir, scale=1, seed=7)`` writes the layout of docs/sources.md:

    police/police.db                          SQLite: cases, suspects, transfers
    procuratorate/reviews_YYYYMMDD.csv        daily GBK CSV exports
    courts/court_cases_YYYYMMDD.jsonl         daily JSON Lines dumps
    corrections/custody_YYYYMM.xlsx           monthly workbooks, sheet "records"
    legal/*.jsonl                             the legal-services API's database (served by ``lawlake demo-api``)
    _truth/persons.csv, records.csv, sealed.csv, seal_status.csv, summary.json

``sealed.csv`` lists the (person, police case) pairs that must be sealed (person_id,
police_case_id, reason). ``seal_status.csv`` gives every suspect's (person, police case)
pair its status at the snapshot: person_id, police_case_id, is_minor_at_offense
(``true``/``false``, by the legal age: SPC 法释〔2006〕1号 art. 2, an offense on the 18th
birthday is a minor's), seal_status (``sealed``, ``not_sealed``, or ``pending``: a minor
whose outcome is not known yet, to be withheld until it is) and reason. Its ``sealed``
rows are exactly ``sealed.csv``.

The output depends on nothing but the seed and the scale: every random choice
comes from one ``random.Random(seed)`` (split into one stream per stage, so a
change to one writer leaves the others' output alone), dates are fixed to
2015-01-01 … 2024-12-31 and the workbooks' zip timestamps are pinned. Scale 1
is 2,000 police cases and about 12,600 source records (counting every police
table row, court party and repeated delivery); the size is linear in the scale.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

from lawlake.demo.defects import DEFECT_KINDS, DEFECT_RATES, DefectPlan
from lawlake.demo.legal import write_legal
from lawlake.demo.reference import load_reference
from lawlake.demo.sources import Truth, write_corrections, write_courts, write_police, write_procuratorate
from lawlake.demo.world import AS_OF, World, add_time_limit_facts, build_world

__all__ = ["generate", "world_of", "BASE_POLICE_CASES", "LAYOUT"]

BASE_POLICE_CASES = 2000  # police cases at scale 1
LAYOUT = ("police", "procuratorate", "courts", "corrections", "legal", "_truth")  # everything generate() writes
SUMMARY = Path("_truth") / "summary.json"  # written last: its presence marks a complete demo output


def _prepare_out_dir(out: Path) -> None:
    """Make ``out`` ready: new or empty, or a previous demo output, which is removed.

    Anything else is refused rather than overwritten: the directory may hold
    someone's real data.
    """
    if out.exists() and not out.is_dir():
        raise ValueError(f"demo output {out} exists and is not a directory")
    entries = sorted(out.iterdir()) if out.exists() else []
    if entries:
        if not (out / SUMMARY).is_file():
            raise ValueError(
                f"refusing to write demo data into {out}: the directory is not empty and is not a previous "
                f"demo output (no {SUMMARY.as_posix()}); choose an empty or new directory"
            )
        foreign = [p.name for p in entries if p.name not in LAYOUT]
        if foreign:
            raise ValueError(f"refusing to replace the demo output in {out}: it also holds {', '.join(foreign)}, which the generator did not write")
        for path in entries:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _write_persons(path: Path, world: World) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("person_id", "id_number", "name", "sex", "birth_date"))
        writer.writerows((p.person_id, p.id_number, p.name, p.sex, p.birth_date.isoformat()) for p in world.persons)


def _write_sealed(path: Path, world: World) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("person_id", "police_case_id", "reason"))
        writer.writerows((person.person_id, case.case_id, reason) for person, case, reason in world.sealed)


def _write_seal_status(path: Path, world: World) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("person_id", "police_case_id", "is_minor_at_offense", "seal_status", "reason"))
        writer.writerows(
            (s.person.person_id, s.case.case_id, "true" if s.is_minor else "false", s.status, s.reason) for s in world.seal_statuses
        )


def _population(world: World) -> dict[str, int]:
    cases_per_person: dict[str, int] = {}
    suspects = minors = eighteenth_birthdays = 0
    for case in world.cases:
        for suspect in case.suspects:
            suspects += 1
            minors += suspect.minor
            birth, day = suspect.person.birth_date, case.occurred_on
            eighteenth_birthdays += (day.year - birth.year, day.month, day.day) == (18, birth.month, birth.day)
            cases_per_person[suspect.person.person_id] = cases_per_person.get(suspect.person.person_id, 0) + 1
    return {
        "persons": len(world.persons),
        "repeat_offenders": sum(1 for n in cases_per_person.values() if n > 1),
        "police_cases": len(world.cases),
        "suspects": suspects,
        "minors_at_offense": minors,
        "reviews": len(world.reviews),
        "court_cases": len(world.court_cases),
        "custody_records": len(world.custody),
        "sealed": len(world.sealed),
        "offenses_on_the_18th_birthday": eighteenth_birthdays,
        "seal_pending": sum(1 for s in world.seal_statuses if s.status == "pending"),
    }


def _injected(plans: list[DefectPlan]) -> dict[str, dict]:
    """Per rate-drawn kind: its configured rate, the eligible records and how many got it."""
    totals = {kind: {"rate": rate, "eligible": 0, "count": 0} for kind, rate in DEFECT_RATES.items()}
    for plan in plans:
        for kind, stats in plan.injected().items():
            totals[kind]["eligible"] += stats["eligible"]
            totals[kind]["count"] += stats["count"]
    return totals


def world_of(*, scale: float = 1, seed: int = 7) -> World:
    """The true world :func:`generate` writes for ``scale`` and ``seed`` (time-limit facts included), without writing it."""
    streams, _legal, facts = _streams(seed)
    world = build_world(streams[0], load_reference(), max(1, round(BASE_POLICE_CASES * scale)))
    add_time_limit_facts(world, facts)
    return world


def _streams(seed: int) -> tuple[list[random.Random], random.Random, random.Random]:
    """The generator's random streams, in the order they are drawn: one per stage, then the legal services, then the time-limit facts.

    Each later source draws a stream of its own after the earlier ones, so adding it changed none of them.
    """
    master = random.Random(seed)
    streams = [random.Random(master.getrandbits(64)) for _ in range(5)]
    legal = random.Random(master.getrandbits(64))
    facts = random.Random(master.getrandbits(64))
    return streams, legal, facts


def generate(out_dir: str | Path, *, scale: float = 1, seed: int = 7) -> dict:
    """Write the agencies' source systems and the ground truth into ``out_dir``; return the summary.

    ``out_dir`` must be new, empty or a previous demo output (which is replaced).
    Raises ValueError otherwise, or for a scale that is not positive.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    out = Path(out_dir)
    _prepare_out_dir(out)
    streams, legal_rng, facts_rng = _streams(seed)
    reference = load_reference()
    world = build_world(streams[0], reference, max(1, round(BASE_POLICE_CASES * scale)))
    add_time_limit_facts(world, facts_rng)
    truth_dir = out / "_truth"
    truth_dir.mkdir()
    plans = [DefectPlan(rng) for rng in streams[1:]]
    truth = Truth(truth_dir / "records.csv")
    try:
        files = {
            "police": write_police(out / "police", world, plans[0], truth),
            "procuratorate": write_procuratorate(out / "procuratorate", world, reference.charges, plans[1], truth),
            "courts": write_courts(out / "courts", world, plans[2], truth),
            "corrections": write_corrections(out / "corrections", world, plans[3], truth),
            "legal": write_legal(out / "legal", world, legal_rng, truth),
        }
    finally:
        truth.close()
    _write_persons(truth_dir / "persons.csv", world)
    _write_sealed(truth_dir / "sealed.csv", world)
    _write_seal_status(truth_dir / "seal_status.csv", world)
    summary = {
        "seed": seed,
        "scale": scale,
        "as_of": AS_OF.isoformat(),
        "population": _population(world),
        "files": files,
        "records": dict(sorted(truth.records.items())),
        "records_total": sum(truth.records.values()),
        "defects": {kind: truth.defects[kind] for kind in DEFECT_KINDS},
        "injected": _injected(plans),
    }
    (out / SUMMARY).write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return summary
