"""share: each partner's extract of gold, as its policy in ``schemas/shares/`` defines it.

For every partner with an unexpired grant and every table in its policy, the stage
writes ``share.<partner>.<table>``: the policy's rows and columns, masked, with sealed
juvenile records excluded. The gate then proves, on the written candidate, that no
sealed record is present, that no column holds a raw identity number, that masked
columns hold no source value, and that every row satisfies the partner's row filter.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lawlake import contracts, policy, sealing
from lawlake.catalog import Reconciliation
from lawlake.config import Settings
from lawlake.pipeline import Candidate, StageContext, StageOutput

__all__ = ["build_share_table", "run", "contract", "checks"]

# An identity number standing alone or beside non-alphanumeric text (身份证号330102…), not a digit run inside a hex token.
ID_NUMBER_SQL = r"'(^|[^0-9A-Za-z])([0-9]{17}[0-9Xx]|[0-9]{15})($|[^0-9A-Za-z])'"


def build_share_table(gold: DataFrame, table: policy.SharedTable, *, key: bytes, sealed_chain_ids: DataFrame) -> DataFrame:
    """One row per gold row the partner may see: filtered, withheld (sealed or pending) records excluded, columns masked.

    ``sealed_chain_ids``: every withheld chain (:func:`lawlake.sealing.withheld_chain_ids`); a
    row that carries its own ``seal_status`` is also excluded unless it says ``not_sealed``.
    """
    if "seal_status" in gold.columns:
        gold = gold.where(~sealing.is_withheld(F.col("seal_status")))
    return policy.apply(gold, table, key=key, sealed_chain_ids=sealed_chain_ids)


def _policy_table(name: str) -> tuple[policy.Policy, policy.SharedTable]:
    _, partner, table = name.split(".")
    p = policy.load(partner)
    return p, p.table(table)


def contract(name: str, settings: Settings) -> contracts.Contract:
    p, t = _policy_table(name)
    return policy.share_contract(p, t)


def _sql_literal(value) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _row_filter_sql(rows: dict, alias: str) -> str:
    clauses = []
    for col, spec in rows.items():
        ((op, value),) = spec.items()
        c = f"{alias}.`{col}`"
        if op == "prefix":
            clauses.append("(" + " OR ".join(f"startswith({c}, {_sql_literal(v)})" for v in value) + ")")
        elif op == "in":
            clauses.append(f"{c} IN ({', '.join(_sql_literal(v) for v in value)})")
        else:
            clauses.append(f"{c} = {_sql_literal(value)}")
    return " AND ".join(f"coalesce({cl}, false)" for cl in clauses) or "true"


def checks(name: str, settings: Settings) -> dict:
    """The share gate's policy checks for one share table (SQL that must return no rows)."""
    p, t = _policy_table(name)
    shape = policy.share_contract(p, t)
    strings = [c.name for c in shape.columns if c.type == "string"]
    out = [
        # a shared chain must be in gold and not_sealed there: sealed, pending, unknown or missing all fail
        {"name": "no_sealed_records",
         "sql": "SELECT s.chain_id FROM {candidate} s LEFT JOIN {gold.case_chain} g ON s.chain_id = g.chain_id "
                "WHERE g.chain_id IS NULL OR coalesce(g.seal_status, 'pending') <> 'not_sealed'"},
        {"name": "rows_within_partner_filter",
         "sql": f"SELECT s.chain_id FROM {{candidate}} s JOIN {{{t.source}}} g ON s.chain_id = g.chain_id WHERE NOT ({_row_filter_sql(t.rows, 'g')})"},
    ]
    if "chain_id" in shape.names:
        out.append(sealing.share_check())
    if strings:
        out.append({"name": "no_raw_identity_numbers",
                    "sql": "SELECT * FROM {candidate} WHERE " + " OR ".join(f"coalesce(`{c}` RLIKE {ID_NUMBER_SQL}, false)" for c in strings)})
    for col, mask in t.columns.items():
        if mask in ("pseudonym", "mask"):
            out.append({"name": f"{col}_holds_no_source_value",
                        "sql": f"SELECT s.`{col}` FROM {{candidate}} s JOIN (SELECT DISTINCT `{col}` AS v FROM {{{t.source}}}) g ON s.`{col}` = g.v"})
    expectations = []
    for col, mask in t.columns.items():
        pattern = {"year": r"^\d{4}$", "month": r"^\d{4}-\d{2}$", "pseudonym": r"^[0-9a-f]{32}$"}.get(mask)
        if pattern:
            expectations.append(("expect_column_values_to_match_regex", {"column": col, "regex": pattern}))
    return {"checks": out, "expectations": expectations}


def run(ctx: StageContext, *, today: date | None = None) -> StageOutput:
    """Materialize every partner's share tables from gold."""
    today = today or date.today()
    out = StageOutput()
    chain = ctx.read("gold.case_chain")
    sealed = sealing.withheld_chain_ids(chain)
    expired = []
    for p in policy.load_all():
        if p.expires_on < today:
            expired.append(p.partner)  # an expired grant gets nothing new; its last share stays as published
            continue
        key = policy.partner_key(ctx.settings.secret_key, p.partner)
        for t in p.tables:
            gold = ctx.read(t.source)
            name = p.logical(t)
            path = ctx.write_candidate(build_share_table(gold, t, key=key, sealed_chain_ids=sealed), name, contract=policy.share_contract(p, t))
            n_in = gold.count()
            n_out = ctx.spark.read.format("delta").load(str(path)).count()
            # Rows the partner may not see are excluded by policy, counted on their own so the ledger checks the share.
            inside = gold.where(policy.row_condition(t.rows))
            n_outside = n_in - inside.count()
            n_sealed = inside.join(sealed, "chain_id", "left_semi").count() if "chain_id" in gold.columns else 0
            out.candidates.append(Candidate(name, path))
            out.reconciliations.append(Reconciliation(name, n_in, n_out, 0, 0, n_outside + n_sealed))
    out.notes["expired_grants"] = expired
    return out
