"""The justice bureau's public legal services: legal-aid appointments and mediation records.

The service is an HTTP API (``lawlake demo-api``, :mod:`lawlake.demo.api`); what it
serves is its database, written here as ``legal/legal_aid_appointments.jsonl`` and
``legal/mediation_records.jsonl`` (one current record a line, as the service holds
it). Records are updated in nightly batches, so many share one ``updated_at``; a
few are corrected later (a later ``updated_at``, the same id).

Legal aid: every minor defendant at a first instance gets a lawyer appointed (CPL
art. 278), adults in :data:`LEGAL_AID_SHARE` of the cases; the court notifies the
county's legal-aid centre, which appoints within a few days of filing.

Truth keys: ``legal.appointments`` ``appointment_id``; ``legal.mediations`` ``mediation_id``.
Draws come from the generator's own stream for this source, so adding it changed no
other source's records.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

from lawlake.demo.world import AS_OF, World

__all__ = ["write_legal", "APPOINTMENTS_FILE", "MEDIATIONS_FILE", "LEGAL_AID_SHARE"]

APPOINTMENTS_FILE = "legal_aid_appointments.jsonl"
MEDIATIONS_FILE = "mediation_records.jsonl"
LEGAL_AID_SHARE = 0.3  # adult defendants at first instance with an appointed lawyer
APPOINTMENT_LAG_DAYS = (1, 10)  # court filing → appointment
CORRECTION_SHARE = 0.03  # records corrected in a later batch
MEDIATIONS_PER_CASE = 0.5
DISPUTES = ("邻里纠纷", "婚姻家庭纠纷", "损害赔偿纠纷", "劳动争议", "物业纠纷", "土地承包纠纷")
OUTCOMES = ("调解成功", "调解成功", "调解成功", "调解不成", "终止调解")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"


def _batch_time(day) -> str:
    """The nightly batch that records the day's changes: the same timestamp for all of them."""
    return datetime.combine(min(day, AS_OF), datetime.min.time()).replace(hour=23, minute=30).isoformat(sep=" ")


def _centre(court_name: str) -> str:
    return court_name.replace("人民法院", "法律援助中心")


def _appointments(world: World, rng: random.Random, truth) -> list[dict]:
    rows = []
    for case in world.court_cases:
        if case.level != "first_instance":
            continue
        for party in case.parties:
            if not (party.suspect.minor or rng.random() < LEGAL_AID_SHARE):
                continue
            person = party.suspect.person
            appointed = min(case.filed_on + timedelta(days=rng.randint(*APPOINTMENT_LAG_DAYS)), AS_OF)
            aid_id = f"FY{len(rows) + 1:09d}"
            row = {
                "appointment_id": aid_id,
                "case_number": case.case_number,
                "defendant_name": person.name,
                "id_number": person.id_number,
                "birth_date": person.birth_date.isoformat(),
                "appointed_on": appointed.isoformat(),
                "appointed_by": _centre(case.court_name),
                "lawyer": rng.choice(SURNAMES) + rng.choice("明华强伟芳敏静丽军"),
                "is_minor": party.suspect.minor,
                "updated_at": _batch_time(appointed),
            }
            # the truth marks a minor's records like every source's (defects.person_view)
            defects = ["minor_at_offense"] if party.suspect.minor else []
            if appointed + timedelta(days=5) <= AS_OF and rng.random() < CORRECTION_SHARE:
                # corrected in a later nightly batch: the API serves only the corrected version (one delivery, no earlier one)
                row["updated_at"] = _batch_time(appointed + timedelta(days=rng.randint(5, 60)))
            rows.append(row)
            truth.add("legal.appointments", aid_id, person.person_id, case.review.case.case_id, defects)
    return rows


def _mediations(world: World, rng: random.Random, truth) -> list[dict]:
    rows = []
    for case in world.cases:
        if rng.random() >= MEDIATIONS_PER_CASE:
            continue
        applied = case.occurred_on + timedelta(days=rng.randint(0, 30))
        if applied > AS_OF:
            continue
        concluded = applied + timedelta(days=rng.randint(1, 30))
        done = concluded <= AS_OF
        mid = f"TJ{len(rows) + 1:09d}"
        rows.append({
            "mediation_id": mid,
            "region_code": case.county.code,
            "committee": f"{case.county.name}人民调解委员会",
            "dispute_type": rng.choice(DISPUTES),
            "applied_on": applied.isoformat(),
            "concluded_on": concluded.isoformat() if done else None,
            "outcome": rng.choice(OUTCOMES) if done else None,
            "updated_at": _batch_time(concluded if done else applied),
        })
        truth.add("legal.mediations", mid, "", "", [])
    return rows


def write_legal(directory: Path, world: World, rng: random.Random, truth) -> int:
    """``legal/``: the service's database, one JSON record a line per table; returns the number of files."""
    directory.mkdir(parents=True)
    for name, rows in ((APPOINTMENTS_FILE, _appointments(world, rng, truth)), (MEDIATIONS_FILE, _mediations(world, rng, truth))):
        rows.sort(key=lambda r: (r["updated_at"], next(iter(r.values()))))
        with (directory / name).open("w", encoding="utf-8", newline="\n") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    return 2
