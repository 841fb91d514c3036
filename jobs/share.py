"""share: each partner's extract of gold, as its policy in ``schemas/shares/`` defines it.

For every partner with an unexpired grant and every table in its policy, the stage
writes ``share.<partner>.<table>``: the policy's rows and columns, masked, with sealed
juvenile records excluded. The gate then proves, on the written candidate, that no
sealed record is present, that no column holds a raw identity number, that masked
columns hold no source value, and that every row satisfies the partner's row filter.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lawlake import policy, sealing
from lawlake.declarations import Params, Stage, Table
from lawlake.suites import Suite, check, contract_expectations
from lawlake.tables import first_row

__all__ = ["build_share_table", "row_filter_sql", "share_suite", "share_tables", "STAGE"]

# An identity number standing alone or beside non-alphanumeric text (身份证号330102…), not a digit run inside a hex token.
ID_NUMBER_SQL = r"'(^|[^0-9A-Za-z])([0-9]{17}[0-9Xx]|[0-9]{15})($|[^0-9A-Za-z])'"


def build_share_table(gold: DataFrame, chain: DataFrame, table: policy.SharedTable, *, key: bytes) -> DataFrame:
    """One row per gold row, masked as the policy says, marked ``_outcome``: ``out`` or ``excluded`` (outside the filter, or withheld: sealed or pending).

    The row filter is the policy's one SQL expression (:func:`row_filter_sql`), the same
    the gate checks the candidate with.
    """
    sealed = sealing.withheld_chain_ids(chain).withColumn("_sealed", F.lit(True))
    marked = gold.withColumn("_inside", F.expr(row_filter_sql(table.rows)))
    if "chain_id" in gold.columns:
        marked = marked.join(sealed, "chain_id", "left")
    else:
        marked = marked.withColumn("_sealed", F.lit(False))
    if "seal_status" in gold.columns:  # a row carrying its own status is withheld unless it says not_sealed
        marked = marked.withColumn("_sealed", F.coalesce(F.col("_sealed"), F.lit(False)) | sealing.is_withheld(F.col("seal_status")))
    elif "is_sealed" in gold.columns:
        marked = marked.withColumn("_sealed", F.coalesce(F.col("_sealed"), F.lit(False)) | F.coalesce(F.col("is_sealed"), F.lit(True)))
    outcome = F.when(F.col("_inside") & ~F.coalesce(F.col("_sealed"), F.lit(False)), F.lit("out")).otherwise(F.lit("excluded"))
    return marked.select(*policy.masked_columns(table, key=key), outcome.alias("_outcome"))


def _sql_literal(value) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def row_filter_sql(rows: dict, alias: str | None = None) -> str:
    """The policy's row filter as one SQL boolean expression (every clause must hold; null counts as outside)."""
    clauses = []
    for col, spec in rows.items():
        ((op, value),) = spec.items()
        c = f"{alias}.`{col}`" if alias else f"`{col}`"
        if op == "prefix":
            clauses.append("(" + " OR ".join(f"startswith({c}, {_sql_literal(v)})" for v in value) + ")")
        elif op == "in":
            clauses.append(f"{c} IN ({', '.join(_sql_literal(v) for v in value)})")
        else:
            clauses.append(f"{c} = {_sql_literal(value)}")
    return " AND ".join(f"coalesce({cl}, false)" for cl in clauses) or "true"


def share_suite(p: policy.Policy, t: policy.SharedTable) -> Suite:
    """The share table's native suite, compiled from the policy: its derived contract's rules plus the policy checks."""
    shape = policy.share_contract(p, t)
    strings = [c.name for c in shape.columns if c.type == "string"]
    exps = list(contract_expectations(shape))
    # a shared chain must be in gold and not_sealed there: sealed, pending, unknown or missing all fail
    exps.append(check("no_sealed_records", "SELECT s.chain_id FROM {batch} s LEFT JOIN {gold.case_chain} g ON s.chain_id = g.chain_id "
                                           "WHERE g.chain_id IS NULL OR coalesce(g.seal_status, 'pending') <> 'not_sealed'"))
    exps.append(check("rows_within_partner_filter",
                      f"SELECT s.chain_id FROM {{batch}} s JOIN {{{t.source}}} g ON s.chain_id = g.chain_id WHERE NOT ({row_filter_sql(t.rows, 'g')})"))
    if "chain_id" in shape.names:  # sealing judged again from silver's evidence, not only gold's flag
        evidence = sealing.share_check()
        exps.append(check(evidence["name"], evidence["sql"].replace("{candidate}", "{batch}")))
    if strings:
        exps.append(check("no_raw_identity_numbers",
                          "SELECT * FROM {batch} WHERE " + " OR ".join(f"coalesce(`{c}` RLIKE {ID_NUMBER_SQL}, false)" for c in strings)))
    for col, mask in t.columns.items():
        if mask in ("pseudonym", "mask"):
            exps.append(check(f"{col}_holds_no_source_value",
                              f"SELECT s.`{col}` FROM {{batch}} s JOIN (SELECT DISTINCT `{col}` AS v FROM {{{t.source}}}) g ON s.`{col}` = g.v"))
    for col, mask in t.columns.items():
        pattern = {"year": r"^\d{4}$", "month": r"^\d{4}-\d{2}$", "pseudonym": r"^[0-9a-f]{32}$"}.get(mask)
        if pattern:
            exps.append({"type": "expect_column_values_to_match_regex", "kwargs": {"column": col, "regex": pattern}, "meta": {"source": "policy"}})
    return Suite(p.logical(t), tuple(exps))


def _declare(p: policy.Policy, t: policy.SharedTable) -> Table:
    def build(gold: DataFrame, chain: DataFrame, *, secret_key: bytes) -> DataFrame:
        return build_share_table(gold, chain, t, key=policy.partner_key(secret_key, p.partner))

    build.__wrapped__ = build_share_table  # type: ignore[attr-defined]  # `lawlake tables --explain` names the real builder
    return Table(
        name=p.logical(t),
        build=build,
        inputs=(t.source, "gold.case_chain"),
        params=("secret_key",),
        rows=lambda df: df.where(F.col("_outcome") == "out").drop("_outcome"),
        tally=lambda df, *_: dict(zip(("rows_in", "rows_excluded"), first_row(df.agg(F.count(F.lit(1)), F.sum((F.col("_outcome") == "excluded").cast("int")))))),
        contract=policy.share_contract(p, t),
        suite=share_suite(p, t),
    )


def share_tables(params: Params) -> tuple[Table, ...]:
    """Every unexpired partner policy's tables (an expired grant gets nothing new; its last share stays as released)."""
    return tuple(_declare(p, t) for p in policy.load_all() if p.expires_on >= params.data_date for t in p.tables)


STAGE = Stage("share", share_tables, doc=__doc__ or "")
