"""Score the normalize stage against the demo agencies' ground truth.

    .venv/bin/python bench/score_normalize.py [--scale S] [--seed N] [--workdir DIR] [--examples K]

Generates the demo agencies (:func:`lawlake.demo.generate`), runs gather and
normalize in this process into a fresh lake (:func:`lawlake.pipeline.run_lifecycle`)
and compares what happened to every delivered record with ``_truth/records.csv``:

1. every rejecting rule (``quarantine.records``, stage ``normalize``): how many
   records it rejected, how many of those carry a defect the rule is meant to
   catch (true positives), its precision and its recall;
2. the transformations that must NOT reject (variant and legacy case numbers,
   15-digit identity numbers, date formats, name and charge variants, missing
   identity numbers and other optional fields): the share of those records that
   reached silver, and where checkable whether the value came out right;
3. late updates (the newest version kept, the older superseded), duplicate
   deliveries and truncated lines (quarantined at gather).

A rule either rejects the record (``reject_record``: quarantine scope ``record``) or
nulls the field (``null_field``: scope ``field``, the record goes on to silver naming the
field in ``invalid_fields``), as the silver contract declares. Precision and recall are
counted the same way for both; a record whose defects only null fields must still
reach silver (``field_rejection`` below), with those fields named.

Everything is counted per *record* — the truth's (source, record_key) — because
all the versions and repeated deliveries of one record share its defects.

The joins (truth key ↔ lake), per truth source:

- ``police.cases|suspects|transfers``: the source id, which is also the bronze
  column, the silver key and the quarantine ``record_key``.
- ``procuratorate.reviews``: ``受案号|身份证号`` as delivered, or ``受案号|姓名`` when
  the number is empty. The silver key (``prosecution_id``) holds the *parsed*
  number (a 15-digit one upgraded, a mistyped one replaced by the name), so the
  quarantine row is joined through its ``record`` JSON (``raw_review_id``,
  ``raw_id_number``, ``raw_name``: the delivered values).
- ``courts.cases``: the case number as delivered. The silver key is the canonical
  number, so the quarantine row is joined on ``record.raw_case_number``.
- ``courts.parties``: ``case number as delivered|party index from 0``. The
  quarantine key is ``canonical number#party index from 1``; its ``record`` has
  ``raw_case_number`` but not the index, which is taken from after the last ``#``.
- ``corrections.custody``: the true 记录编号. A row whose 记录编号 was lost has a
  null key everywhere; the generator numbers records ``JY`` + admission month +
  4-digit sequence in row order, so bronze row *k* of ``custody_YYYYMM.xlsx`` is
  ``JYYYYYMM{k:04d}`` (checked against every row that kept its number), and its
  quarantine row is found by matching the ``record`` JSON to the bronze fields.
- Silver rows carry ``_record_hash``, the hash of the bronze row they came from
  (for a defendant: its court case line, plus ``party_index``), which maps them
  back to the delivered record exactly.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["Scores", "RuleScore", "KeepScore", "score", "run_demo", "main"]

Record = tuple[str, str]  # (truth source, truth record_key)

# silver table ← bronze table ← truth source
TABLE_SOURCES: dict[str, str] = {
    "silver.police_cases": "police.cases",
    "silver.police_transfers": "police.transfers",
    "silver.suspects": "police.suspects",
    "silver.prosecutions": "procuratorate.reviews",
    "silver.court_cases": "courts.cases",
    "silver.court_defendants": "courts.parties",
    "silver.custody": "corrections.custody",
}
BRONZE_TABLES: dict[str, str] = {
    "police.cases": "bronze.police_cases",
    "police.transfers": "bronze.police_transfers",
    "police.suspects": "bronze.police_suspects",
    "procuratorate.reviews": "bronze.procuratorate_reviews",
    "courts.cases": "bronze.court_cases",
    "corrections.custody": "bronze.custody_records",
}
SOURCE_ID: dict[str, str] = {"police.cases": "case_id", "police.transfers": "transfer_id", "police.suspects": "suspect_id"}

# A required field left empty (truth ``missing_field``; bronze column names) and the rule
# that must reject it (its record or, as the contract declares, the field). Fields the
# generator may empty that are optional in the silver contracts (suspect sex/birth date,
# transfer procuratorate, review decision date, court review id/filing date, party
# sex/birth date) are not here: those records must be kept. Neither is a police case's
# region: an empty one is derived from the case id (region_source = case_id).
MISSING_FIELD_RULES: dict[tuple[str, str], str] = {
    ("police.cases", "charge"): "charge.missing",
    ("police.suspects", "name"): "name.missing",
    ("police.transfers", "transferred_on"): "transferred_on.missing",
    ("procuratorate.reviews", "police_case_id"): "police_case_id.missing",
    ("procuratorate.reviews", "decision"): "decision.missing",
    ("courts.cases", "charge"): "charge.missing",
    ("courts.parties", "name"): "name.missing",
    ("corrections.custody", "case_number"): "case_number.missing",
    ("corrections.custody", "custody_type"): "custody_type.unknown",  # no custody_type.missing rule: empty is unknown
    ("corrections.custody", "name"): "name.missing",
}
# Fields the generator may leave empty, per source (lawlake/demo/sources.py), bronze names.
MAY_BE_EMPTIED: dict[str, tuple[str, ...]] = {
    "police.cases": ("charge", "region_code"),
    "police.suspects": ("name", "sex", "birth_date"),
    "police.transfers": ("procuratorate", "transferred_on"),
    "procuratorate.reviews": ("police_case_id", "decision", "decided_on"),
    "courts.cases": ("review_id", "charge", "filed_on"),
    "courts.parties": ("sex", "birth_date", "name"),
    "corrections.custody": ("case_number", "custody_type", "name"),
}
PERSON_SOURCES = ("police.suspects", "procuratorate.reviews", "courts.parties", "corrections.custody")
# Transformations: records with these defects must reach silver (unless another defect rejects them).
MUST_NOT_REJECT = (
    "case_number_variant",
    "legacy_case_number",
    "id_legacy_15",
    "date_format",
    "name_variant",
    "charge_variant",
    "id_missing",  # the identity number is optional (silver id_number is nullable)
    "missing_optional_field",  # a field no rule requires (see MISSING_FIELD_RULES)
    "field_rejection",  # every rule the record must meet nulls a field: the record goes on
)
UNREADABLE_CELL = re.compile(r"^#+$")  # what Excel shows for a date in a column too narrow for it
TRUNCATED_CASE_NUMBER = re.compile(r'"case_number":\s*"([^"]*)"')


def rule_action(table: str, rule: str) -> tuple[str, str]:
    """(field, on_failure) of a normalize rule, as the silver contract of ``table`` declares it."""
    from jobs import normalize

    return normalize.rule_actions(table).get(rule, ("", "reject_record"))


def rejects_record(record: Record, rules: set[str]) -> bool:
    """Whether any of ``rules`` rejects the whole ``record`` (rather than nulling a field)."""
    table = SOURCE_TABLE[record[0]]
    return any(rule_action(table, r)[1] == "reject_record" for r in rules)


SOURCE_TABLE = {s: t for t, s in TABLE_SOURCES.items()}


# -- results ----------------------------------------------------------------------------


@dataclass
class RuleScore:
    """One rejecting rule (in one silver table, or over all of them when ``table`` is "*")."""

    table: str
    rule: str
    rejected: int  # distinct records it rejected
    true_positives: int  # of those, records with a defect it is meant to catch
    expected: int  # records with such a defect
    other_rule: int  # expected records rejected by an earlier rule of the table instead (first rule wins)
    rows: int  # quarantine rows (versions and deliveries of a record count apart)

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.rejected if self.rejected else None

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.expected if self.expected else None


@dataclass
class KeepScore:
    """A transformation that must not reject: how many of its records reached silver."""

    kind: str
    records: int  # records with the defect and nothing that should reject them
    in_silver: int
    value_checked: int = 0  # records in silver whose normalized value could be checked
    value_ok: int = 0

    @property
    def share(self) -> float | None:
        return self.in_silver / self.records if self.records else None


@dataclass
class Example:
    """A record the stage got wrong, for the report."""

    what: str  # e.g. "false positive" or "not in silver"
    rule: str
    record: Record
    raw_value: str | None
    defects: str
    expected: str


@dataclass
class Scores:
    """Everything :func:`score` measured; :func:`report` prints it."""

    rules: list[RuleScore]  # per (table, rule)
    by_rule: list[RuleScore]  # per rule id, all tables
    keep: list[KeepScore]
    late_updates: list[dict]
    gather: list[RuleScore]
    examples: list[Example]
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def rule(self, rule: str, table: str = "*") -> RuleScore:
        rows = self.by_rule if table == "*" else self.rules
        return next(r for r in rows if r.rule == rule and r.table == table)

    def kept(self, kind: str) -> KeepScore:
        return next(k for k in self.keep if k.kind == kind)


# -- running the pipeline ------------------------------------------------------------------


def run_demo(workdir: Path, *, scale: float, seed: int) -> tuple[Path, Path, dict[str, float]]:
    """Generate the demo agencies into ``workdir/sources`` and run gather + normalize into ``workdir/lake``."""
    from lawlake import config, demo, pipeline

    if workdir.exists() and any(workdir.iterdir()):
        raise ValueError(f"work directory {workdir} is not empty: choose a new or empty one")
    sources, lake = workdir / "sources", workdir / "lake"
    start = time.perf_counter()
    demo.generate(sources, scale=scale, seed=seed)
    generated = time.perf_counter()
    pipeline.run_lifecycle(config.load(lake=lake), "score-normalize", sources=sources, stages=("gather", "normalize"))
    return sources, lake, {"generate": generated - start, "gather+normalize": time.perf_counter() - generated}


def _delta(lake: Path, name: str) -> pd.DataFrame:
    from deltalake import DeltaTable

    from lawlake import tables

    return DeltaTable(str(tables.location(lake, name))).to_pandas()


# -- the truth -------------------------------------------------------------------------------


@dataclass
class Truth:
    defects: dict[Record, set[str]]  # union over the record's rows
    person: dict[Record, str]  # person_id of person records
    case: dict[Record, str]  # police_case_id of every record
    rows_with: dict[tuple[str, str], Counter]  # (source, kind) → rows per record_key with that kind
    persons: pd.DataFrame  # indexed by person_id


def load_truth(sources: Path) -> Truth:
    records = pd.read_csv(sources / "_truth" / "records.csv", dtype=str, keep_default_na=False)
    defects: dict[Record, set[str]] = defaultdict(set)
    person: dict[Record, str] = {}
    case: dict[Record, str] = {}
    rows_with: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for source, key, person_id, case_id, cell in zip(records.source, records.record_key, records.person_id, records.police_case_id, records.defects):
        if source not in SOURCE_TABLE:
            continue  # the legal services' records: no normalize rule of the case systems to score
        kinds = set(cell.split("|")) if cell else set()
        defects[(source, key)] |= kinds
        case[(source, key)] = case_id
        if person_id:
            person[(source, key)] = person_id
        for kind in kinds:
            rows_with[(source, kind)][key] += 1
    persons = pd.read_csv(sources / "_truth" / "persons.csv", dtype=str, keep_default_na=False).set_index("person_id")
    return Truth(dict(defects), person, case, rows_with, persons)


# -- bronze: the delivered records ---------------------------------------------------------


@dataclass
class Deliveries:
    fields: dict[Record, dict]  # the record's delivered fields (its first bronze row)
    by_hash: dict[str, Record]  # bronze _record_hash → record (court lines → courts.cases)
    versions: dict[Record, list[tuple[str, str]]]  # (updated_at, _record_hash) of every bronze row
    custody_unkeyed: dict[tuple, str]  # fields of bronze custody rows with no 记录编号 → true 记录编号


def _present(fields: dict) -> tuple:
    """A row's non-empty fields as a hashable signature."""
    return tuple(sorted((k, v) for k, v in fields.items() if v is not None))


def _custody_key(row: dict) -> str:
    """The true 记录编号 of a bronze custody row: row k of custody_YYYYMM.xlsx is JYYYYYMM{k:04d}."""
    month = re.search(r"custody_(\d{6})\.xlsx$", row["_source_file"]).group(1)
    return f"JY{month}{int(row['_row_number']):04d}"


def _bronze_key(source: str, row: dict) -> str:
    if source in SOURCE_ID:
        return row[SOURCE_ID[source]]
    if source == "procuratorate.reviews":  # as gather's and the truth's key: 受案号|身份证号 or 姓名
        return f"{row['review_id']}|{row['id_number'] or row['suspect_name']}"
    if source == "courts.cases":
        return row["case_number"]
    positional = _custody_key(row)
    if row["record_id"] is not None and row["record_id"] != positional:
        raise RuntimeError(f"custody row order no longer gives the record id: {row['record_id']} at {positional}")
    return positional


def load_deliveries(lake: Path) -> Deliveries:
    out = Deliveries({}, {}, defaultdict(list), {})
    lineage = {"_source", "_source_file", "_row_number", "_record_hash", "_batch_id", "_ingested_at"}
    for source, table in BRONZE_TABLES.items():
        frame = _delta(lake, table)
        frame = frame.astype(object).where(frame.notna(), None)
        for row in frame.to_dict("records"):
            record = (source, _bronze_key(source, row))
            fields = {k: v for k, v in row.items() if k not in lineage and k != "extra_fields"}
            out.fields.setdefault(record, fields)
            out.by_hash[row["_record_hash"]] = record
            out.versions[record].append((row["updated_at"] or "", row["_record_hash"]))
            if source == "courts.cases":
                for i, party in enumerate(json.loads(row["parties"] or "[]")):
                    out.fields.setdefault(("courts.parties", f"{record[1]}|{i}"), party)
            if source == "corrections.custody" and row["record_id"] is None:
                out.custody_unkeyed[_present(fields)] = record[1]
    return out


# -- quarantine rows → truth records ---------------------------------------------------------


def normalize_record(table: str, key: str | None, record_json: str | None, deliveries: Deliveries) -> Record | None:
    """The truth record of a normalize quarantine row (see the module docstring), or None."""
    source = TABLE_SOURCES[table]
    raw = {k.removeprefix("raw_"): v for k, v in json.loads(record_json or "{}").items()}
    if source in SOURCE_ID:
        return (source, key) if key else None
    if source == "procuratorate.reviews":
        return (source, f"{raw.get('review_id')}|{raw.get('id_number') or raw.get('name')}")
    if source == "courts.cases":
        return (source, raw.get("case_number"))
    if source == "courts.parties":  # key is canonical#index-from-1 (just the index when the number did not parse)
        index = int((key or "").rsplit("#", 1)[-1]) - 1
        return (source, f"{raw.get('case_number')}|{index}")
    if key:
        return (source, key)
    true_key = deliveries.custody_unkeyed.get(_present({k: v for k, v in raw.items() if k not in ("sex", "birth_date")}))
    return (source, true_key) if true_key else None


# -- what each record should have met ------------------------------------------------------


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def expected_rules(record: Record, truth: Truth, deliveries: Deliveries) -> set[str]:
    """The rules that must reject this record, from its truth defects and what was delivered."""
    source, key = record
    kinds = truth.defects.get(record, set())
    fields = deliveries.fields.get(record, {})
    rules = set()
    if "id_mistyped" in kinds:
        rules.add("id_number.invalid")
    if "missing_field" in kinds:
        for name in MAY_BE_EMPTIED.get(source, ()):
            if _blank(fields.get(name)) and (source, name) in MISSING_FIELD_RULES:
                rules.add(MISSING_FIELD_RULES[(source, name)])
    if "unreadable" in kinds and source == "corrections.custody":  # a lost id, or a date cell shown as ####
        if _blank(fields.get("record_id")):
            rules.add("record_id.missing")
        for name in ("admitted_on", "released_on"):
            if UNREADABLE_CELL.match(fields.get(name) or ""):
                rules.add(f"{name}.unparseable")
    if source == "courts.parties":  # a party of a case whose record must be rejected goes with it
        case = ("courts.cases", key.rsplit("|", 1)[0])
        if rejects_record(case, expected_rules(case, truth, deliveries)):
            rules.add("court_case.rejected")
    # case_number.unparseable: no defect kind makes a case number invalid (variant and
    # legacy numbers must be normalized), so every such rejection is a false positive.
    return rules


def kinds_to_keep(record: Record, truth: Truth, deliveries: Deliveries, expected: set[str] = frozenset()) -> set[str]:
    """The must-not-reject transformations this record exercises (``expected``: the field rules it must meet)."""
    kinds = truth.defects.get(record, set()) & set(MUST_NOT_REJECT)
    if expected:
        kinds.add("field_rejection")
    if "missing_field" in truth.defects.get(record, set()):
        fields = deliveries.fields.get(record, {})
        if any(_blank(fields.get(n)) and (record[0], n) not in MISSING_FIELD_RULES for n in MAY_BE_EMPTIED.get(record[0], ())):
            kinds.add("missing_optional_field")
    return kinds


# -- scoring -----------------------------------------------------------------------------------


def _silver_records(lake: Path, deliveries: Deliveries) -> dict[str, dict[Record, dict]]:
    """Per silver table: record → its silver row, joined through ``_record_hash``."""
    out: dict[str, dict[Record, dict]] = {}
    for table, source in TABLE_SOURCES.items():
        rows: dict[Record, dict] = {}
        for row in _delta(lake, table).to_dict("records"):
            record = deliveries.by_hash[row["_record_hash"]]
            if source == "courts.parties":
                record = (source, f"{record[1]}|{int(row['party_index']) - 1}")
            rows[record] = row
        out[table] = rows
    return out


@dataclass
class Check:
    """A normalized value compared with what the truth implies."""

    ok: bool
    want: str
    got: str | None
    raw: str | None


def _lossy_name(raw: str, true_name: str) -> bool:
    """A transliterated name whose middle dot was dropped or typed as a space: no rule can restore the dot."""
    from lawlake.rules import remove_whitespace

    return "·" in true_name and remove_whitespace(raw) == true_name.replace("·", "")


@dataclass
class ValueChecker:
    """Checks the silver value of a transformed field against the truth, where the truth can tell.

    - ``id_legacy_15``: the upgraded number is the person's true 18-digit number;
    - ``name_variant``: the normalized name is the person's true name (not checked when
      the variant dropped a transliterated name's dot or typed it as a space);
    - ``charge_variant``: the charge code is the one the other agencies' plain
      spellings of the same police case map to (a majority over silver);
    - ``case_number_variant``/``legacy_case_number``: a court case is parsed as the
      right form (an appeal flagged legacy names a legacy first instance, which must
      resolve); a custody row's number names a delivered court case.
    ``date_format`` is not checked: the truth has no dates but birth dates, which
    silver takes from the identity number.
    """

    truth: Truth
    deliveries: Deliveries
    court_numbers: set[str]  # canonical numbers of every delivered court case
    charges: dict[str, str]  # police_case_id → charge code of its plain spellings

    def check(self, kind: str, record: Record, row: dict, expected: set[str] = frozenset()) -> Check | None:
        fields = self.deliveries.fields.get(record, {})
        if kind == "field_rejection":  # the nulled fields are named
            table = SOURCE_TABLE[record[0]]
            want = sorted({rule_action(table, r)[0] for r in expected})
            got = sorted(row.get("invalid_fields") if row.get("invalid_fields") is not None else [])
            return Check(set(want) <= set(got), f"invalid_fields ⊇ {want}", str(got), None)
        if kind == "missing_optional_field" and record[0] == "police.cases" and _blank(fields.get("region_code")):
            want = record[1][1:7]  # A{county}{year}{seq}
            got = f"{row['region_code']} ({row['region_source']})"
            return Check((row["region_code"], row["region_source"]) == (want, "case_id"), f"{want} (case_id)", got, fields.get("region_code"))
        person = self.truth.persons.loc[self.truth.person[record]] if record in self.truth.person else None
        if kind == "id_legacy_15" and person is not None:
            return Check(row["id_number"] == person["id_number"], person["id_number"], row["id_number"], fields.get("id_number"))
        if kind == "name_variant" and person is not None:
            raw = fields.get("suspect_name" if record[0] == "procuratorate.reviews" else "name") or ""
            if _blank(raw) or _lossy_name(raw, person["name"]):  # emptied as well: nothing to normalize
                return None
            return Check(row["name"] == person["name"], person["name"], row["name"], raw)
        if kind == "charge_variant" and self.charges.get(self.truth.case[record]):
            want = self.charges[self.truth.case[record]]
            return Check(row["charge_code"] == want, want, row["charge_code"], fields.get("charge"))
        if kind == "case_number_variant" and record[0] == "courts.cases":
            return Check(not row["is_legacy_number"], "a modern (2016) number", row["case_number"], fields.get("case_number"))
        if kind == "legacy_case_number" and record[0] == "courts.cases":
            ok = bool(row["is_legacy_number"]) or row["original_case_number"] in self.court_numbers
            return Check(ok, "a legacy number, or an original_case_number that resolves", row["case_number"], fields.get("case_number"))
        if kind in ("case_number_variant", "legacy_case_number") and record[0] == "corrections.custody" and not _blank(fields.get("case_number")):
            ok = row["case_number"] in self.court_numbers
            return Check(ok, "the number of a delivered court case", row["case_number"], fields.get("case_number"))
        return None


def _charge_consensus(truth: Truth, silver: dict[str, dict[Record, dict]]) -> dict[str, str]:
    """police_case_id → the charge code most plain (non-variant) spellings of its charge map to."""
    votes: dict[str, Counter] = defaultdict(Counter)
    for table in ("silver.police_cases", "silver.prosecutions", "silver.court_cases"):
        for record, row in silver[table].items():
            if "charge_variant" not in truth.defects[record] and row["charge_code"]:
                votes[truth.case[record]][row["charge_code"]] += 1
    return {case: counter.most_common(1)[0][0] for case, counter in votes.items()}


def _score_rules(quarantine: pd.DataFrame, truth: Truth, deliveries: Deliveries, expected: dict[Record, set[str]]) -> tuple[list[RuleScore], list[Example], int]:
    """Per (table, rule): rejected records vs the records the rule should reject."""
    rejected: dict[tuple[str, str], set[Record]] = defaultdict(set)
    rows: Counter = Counter()
    raw_of: dict[tuple[str, str, Record], str | None] = {}
    unmatched = 0
    for table, rule, key, record_json, raw in zip(quarantine.target_table, quarantine.rule, quarantine.record_key, quarantine.record, quarantine.raw_value):
        record = normalize_record(table, key, record_json, deliveries)
        rows[(table, rule)] += 1
        if record is None or record not in truth.defects:
            unmatched += 1
            record = (TABLE_SOURCES[table], f"?{key}")
        rejected[(table, rule)].add(record)
        raw_of[(table, rule, record)] = raw
    rejected_in: dict[str, set[Record]] = defaultdict(set)  # records rejected whole, by a record rule
    for (table, rule), records in rejected.items():
        if rule_action(table, rule)[1] == "reject_record":
            rejected_in[table] |= records
    should: dict[tuple[str, str], set[Record]] = defaultdict(set)
    source_table = {s: t for t, s in TABLE_SOURCES.items()}
    for record, rules in expected.items():
        for rule in rules:
            should[(source_table[record[0]], rule)].add(record)
    scores, examples = [], []
    for table, rule in sorted(set(rejected) | set(should), key=lambda tr: (list(TABLE_SOURCES).index(tr[0]), tr[1])):
        got, want = rejected.get((table, rule), set()), should.get((table, rule), set())
        scores.append(RuleScore(table, rule, len(got), len(got & want), len(want), len((want - got) & rejected_in[table]), rows[(table, rule)]))
        for record in sorted(got - want):
            examples.append(Example("false positive", rule, record, raw_of[(table, rule, record)], "|".join(sorted(truth.defects.get(record, ()))), "not rejected by this rule"))
        for record in sorted(want - got - rejected_in[table]):
            examples.append(Example("missed", rule, record, None, "|".join(sorted(truth.defects.get(record, ()))), f"rejected by {rule}"))
    return scores, examples, unmatched


def _by_rule(scores: list[RuleScore]) -> list[RuleScore]:
    totals: dict[str, RuleScore] = {}
    for s in scores:
        t = totals.setdefault(s.rule, RuleScore("*", s.rule, 0, 0, 0, 0, 0))
        t.rejected += s.rejected
        t.true_positives += s.true_positives
        t.expected += s.expected
        t.other_rule += s.other_rule
        t.rows += s.rows
    return sorted(totals.values(), key=lambda r: r.rule)


def _score_keep(quarantine: pd.DataFrame, truth: Truth, deliveries: Deliveries, expected: dict[Record, set[str]], silver: dict[str, dict[Record, dict]]) -> tuple[list[KeepScore], list[Example]]:
    """Per must-not-reject kind: records (with nothing that should reject them) that reached silver."""
    why: dict[Record, tuple[str, str | None]] = {}
    for table, rule, key, record_json, raw, scope in zip(
        quarantine.target_table, quarantine.rule, quarantine.record_key, quarantine.record, quarantine.raw_value, quarantine.scope
    ):
        record = normalize_record(table, key, record_json, deliveries)
        if record is not None and scope == "record":
            why.setdefault(record, (rule, raw))
    in_silver = {record: row for rows in silver.values() for record, row in rows.items()}
    # canonical numbers of every delivered court case: in silver, or the key of its quarantine row
    court_numbers = {row["case_number"] for row in silver["silver.court_cases"].values()}
    court_numbers |= set(quarantine[quarantine.target_table == "silver.court_cases"].record_key.dropna())
    checker = ValueChecker(truth, deliveries, court_numbers, _charge_consensus(truth, silver))
    scores = {kind: KeepScore(kind, 0, 0) for kind in MUST_NOT_REJECT}
    examples = []
    for record in truth.defects:
        if rejects_record(record, expected.get(record, set())) or record not in deliveries.fields:
            continue  # rightly rejected for another defect, or never delivered whole
        defects = "|".join(sorted(truth.defects[record]))
        for kind in sorted(kinds_to_keep(record, truth, deliveries, expected.get(record, set()))):
            score = scores[kind]
            score.records += 1
            if record not in in_silver:
                rule, raw = why.get(record, ("(no quarantine row)", None))
                examples.append(Example("not in silver", rule, record, raw, defects, f"{kind}: reach silver"))
                continue
            score.in_silver += 1
            check = checker.check(kind, record, in_silver[record], expected.get(record, set()))
            if check is not None:
                score.value_checked += 1
                score.value_ok += check.ok
                if not check.ok:
                    examples.append(Example("wrong value", kind, record, check.raw, defects, f"{check.want} (silver has {check.got})"))
    return list(scores.values()), examples


def _score_late_updates(truth: Truth, deliveries: Deliveries, expected: dict[Record, set[str]], silver: dict[str, dict[Record, dict]]) -> list[dict]:
    """Records updated late: the newest delivered version must be the one in silver.

    The police database holds only each case's latest state (a later ``updated_at``),
    so police cases have one version; the file feeds deliver the old and the new one.
    """
    tables = {"police.cases": "silver.police_cases", "procuratorate.reviews": "silver.prosecutions", "courts.cases": "silver.court_cases"}
    out = []
    for source, table in tables.items():
        records = [(source, key) for key in truth.rows_with[(source, "late_update")]]
        rejected = sum(1 for r in records if rejects_record(r, expected.get(r, set())))
        kept = newest = older = 0
        for record in records:
            row = silver[table].get(record)
            if row is None:
                continue
            kept += 1
            versions = sorted(deliveries.versions[record])
            newest += row["_record_hash"] == versions[-1][1]
            older += row["_record_hash"] in {h for _, h in versions[:-1]}
        out.append({"source": source, "records": len(records), "versions": sum(len(deliveries.versions[r]) for r in records),
                    "rightly_rejected": rejected, "in_silver": kept, "newest_kept": newest, "older_kept": older})
    return out


def _file_keys(source: str, path: str) -> list[str | None]:
    """The record keys of a delivered file, as gather reads them."""
    from jobs.gather import FILE_READERS, SOURCES

    src = next(s for s in SOURCES if s.name == source)
    return [item.key for item in FILE_READERS[source](Path(path), key_fields=src.key_fields) if getattr(item, "key", None) is not None]


def _score_gather(quarantine: pd.DataFrame, truth: Truth) -> list[RuleScore]:
    """gather.duplicate_delivery and gather.unreadable against the truth rows with those defects (counted per row)."""
    checks = {"gather.duplicate_delivery": "duplicate_delivery", "gather.unreadable": "unreadable"}
    out = []
    for rule, kind in checks.items():
        rows = quarantine[quarantine.rule == rule]
        got: Counter = Counter()
        for source, key, raw in zip(rows.source_table, rows.record_key, rows.raw_value):
            if key is None and raw:  # a truncated court line: its case number comes first
                m = TRUNCATED_CASE_NUMBER.search(raw)
                key = m.group(1) if m else None
            got[(source, key)] += 1
        if rule == "gather.duplicate_delivery":  # a whole file delivered again is one file-level reject: each of its records is a detected duplicate
            for source, record in zip(*[quarantine[quarantine.rule == "gather.duplicate_file"][c] for c in ("source_table", "record")]):
                for key in _file_keys(source, json.loads(record)["path"]):
                    got[(source, key)] += 1
        want: Counter = Counter()
        for source in ("procuratorate.reviews", "courts.cases"):
            for key, n in truth.rows_with[(source, kind)].items():
                want[(source, key)] += n
        tp = sum(min(n, want[k]) for k, n in got.items())
        out.append(RuleScore("bronze (rows)", rule, sum(got.values()), tp, sum(want.values()), 0, len(rows)))
    return out


def score(workdir: Path, *, scale: float = 1, seed: int = 7) -> Scores:
    """Generate, run gather + normalize in ``workdir`` and score the normalize stage."""
    sources, lake, seconds = run_demo(Path(workdir), scale=scale, seed=seed)
    start = time.perf_counter()
    truth = load_truth(sources)
    deliveries = load_deliveries(lake)
    quarantine = _delta(lake, "quarantine.records")
    quarantine = quarantine.astype(object).where(quarantine.notna(), None)
    normalize = quarantine[quarantine.stage == "normalize"]
    expected = {record: rules for record in truth.defects if (rules := expected_rules(record, truth, deliveries))}
    silver = _silver_records(lake, deliveries)
    rules, rule_examples, unmatched = _score_rules(normalize, truth, deliveries, expected)
    keep, keep_examples = _score_keep(normalize, truth, deliveries, expected, silver)
    notes = []
    if unmatched:
        notes.append(f"{unmatched} normalize quarantine rows could not be joined to a truth record (counted as false positives)")
    undelivered = [r for r in truth.defects if r not in deliveries.fields]
    if undelivered:
        notes.append(f"{len(undelivered)} truth records have no bronze row (e.g. {undelivered[:3]})")
    seconds["score"] = time.perf_counter() - start
    return Scores(
        rules=rules,
        by_rule=_by_rule(rules),
        keep=keep,
        late_updates=_score_late_updates(truth, deliveries, expected, silver),
        gather=_score_gather(quarantine[quarantine.stage == "gather"], truth),
        examples=rule_examples + keep_examples,
        notes=notes,
        seconds=seconds,
    )


# -- printing ---------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def table(headers: list[str], rows: list[list]) -> str:
    """A plain fixed-width text table; numbers right-aligned."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(re.fullmatch(r"[-\d./%n]+|n/a", r[i]) for r in cells[1:]) if rows else False for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]])


def _rule_rows(scores: list[RuleScore], with_table: bool) -> list[list]:
    return [
        ([s.table] if with_table else []) + [s.rule, s.rejected, s.true_positives, _pct(s.precision), s.expected, _pct(s.recall), s.other_rule, s.rows]
        for s in scores
    ]


def report(scores: Scores, *, examples: int = 5) -> str:
    head = ["rule", "rejected", "true pos", "precision", "expected", "recall", "other rule", "q rows"]
    parts = [
        "Normalize rules, all silver tables (records; 'expected' = records with a defect the rule must catch;",
        "'other rule' = expected records rejected by an earlier rule instead; 'q rows' = quarantine rows)",
        table(head, _rule_rows(scores.by_rule, False)),
        "",
        "Normalize rules by silver table",
        table(["table"] + head, _rule_rows(scores.rules, True)),
        "",
        "Must not reject (records with the transformation and no defect that should reject them)",
        table(
            ["transformation", "records", "in silver", "share", "value checked", "value ok"],
            [[k.kind, k.records, k.in_silver, _pct(k.share), k.value_checked, k.value_ok] for k in scores.keep],
        ),
        "",
        "Late updates (the newest delivered version must be the silver row)",
        table(
            ["source", "records", "versions", "rightly rejected", "in silver", "newest kept", "older kept"],
            [[u["source"], u["records"], u["versions"], u["rightly_rejected"], u["in_silver"], u["newest_kept"], u["older_kept"]] for u in scores.late_updates],
        ),
        "",
        "Gather (bronze) rejections, counted per delivered row",
        table(["rule", "rejected", "true pos", "precision", "expected", "recall"],
              [[s.rule, s.rejected, s.true_positives, _pct(s.precision), s.expected, _pct(s.recall)] for s in scores.gather]),
    ]
    if scores.examples:
        parts += ["", f"Examples of errors (at most {examples} per kind and rule)"]
        shown: Counter = Counter()
        for e in scores.examples:
            shown[(e.what, e.rule)] += 1
            if shown[(e.what, e.rule)] <= examples:
                parts.append(f"  {e.what:14} {e.rule:26} {e.record[0]} {e.record[1]!r}  raw={e.raw_value!r}  truth={e.defects or '-'}  expected: {e.expected}")
        hidden = {k: n - examples for k, n in shown.items() if n > examples}
        for (what, rule), n in sorted(hidden.items()):
            parts.append(f"  … and {n} more {what} for {rule}")
    parts += ["", *[f"note: {n}" for n in scores.notes], "time: " + ", ".join(f"{k} {v:.1f}s" for k, v in scores.seconds.items())]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="demo scale (1 ≈ 12,600 source records)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, help="keep the demo sources and lake here (new or empty); default a temporary directory")
    parser.add_argument("--examples", type=int, default=5, help="error examples shown per kind and rule")
    args = parser.parse_args(argv)

    import os

    os.environ.setdefault("RUST_LOG", "error")  # Sail's no-op persist/hint warnings
    from lawlake import engine

    try:
        if args.workdir:
            scores = score(args.workdir, scale=args.scale, seed=args.seed)
        else:
            with tempfile.TemporaryDirectory(prefix="score-normalize-") as tmp:
                scores = score(Path(tmp), scale=args.scale, seed=args.seed)
    finally:
        engine.stop()
    print(f"normalize scored against the truth: scale {args.scale}, seed {args.seed}\n")
    print(report(scores, examples=args.examples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
