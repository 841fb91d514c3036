"""Analyst SQL over the published lake: read-only queries on logical table names, with sealed records hidden.

A query is parsed with sqlglot (Spark dialect) and accepted only when it is exactly one
read-only query — ``SELECT``, ``WITH … SELECT``, set operations, ``VALUES`` — whose
tables are all logical lake names (``silver.suspects``, ``share.<partner>.case_chain``,
``gold.case_chain@v3`` for published version 3) or CTEs the query defines. Anything else
— DML, DDL, ``MERGE``, ``INSERT``, ``CREATE … AS SELECT``, ``LOCATION``, ``DIRECTORY``,
``SET``, ``ADD JAR``, ``CACHE``, ``USE``, several statements, path relations
(``delta.`/…` ``, ``text.`/…` ``), table-valued and file functions, JVM reflection — and
anything sqlglot cannot parse raises :class:`SqlRefused`; nothing is passed through.

Each logical name becomes a temporary view over a Delta read of the published table, and
the SQL the engine runs is generated from the checked syntax tree with those view names,
so it holds no path and is exactly what was checked.

Sealed records (Criminal Procedure Law art. 286; ``pending`` ones are withheld alike) are
hidden unless a role the access policy (``schemas/access.yaml``) allows is taken with a
reason, and every such query is audited in the catalog database. The list of withheld
records is ``gold.sealed_records``; when it is not published, tables that need it are
refused (fail closed).
"""

from __future__ import annotations

import getpass
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp
from sqlglot.dialects.spark import Spark
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from lawlake import tables
from lawlake.config import SCHEMAS_DIR
from lawlake.fileio import read_yaml
from lawlake.tables import TableNameError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "SqlRefused",
    "TableRef",
    "ParsedQuery",
    "AccessRole",
    "AccessPolicy",
    "Grant",
    "SEALED_RECORDS",
    "check",
    "load_access",
    "authorize",
    "hide_sealed",
    "resolve",
    "run",
]

SEALED_RECORDS = "gold.sealed_records"
DIALECT = "spark"
ACCESS_POLICY = SCHEMAS_DIR / "access.yaml"

# A version suffix is rewritten to this before parsing (sqlglot would read ``@v3`` as an alias).
_VERSION_MARK = "__lawlake_at_v"
_MARKED = re.compile(rf"^(?P<name>[a-z][a-z0-9_]*?){_VERSION_MARK}(?P<version>\d+)$")

# Statements and clauses that change the lake, write files, or reach outside the query.
_FORBIDDEN: tuple[type[exp.Expression], ...] = tuple(
    t
    for t in (
        getattr(exp, name, None)
        for name in (
            "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "AlterColumn", "Command", "Set", "SetItem",
            "Use", "Cache", "Uncache", "Refresh", "Analyze", "LoadData", "Describe", "Pragma", "Transaction", "Commit",
            "Rollback", "Copy", "Into", "LocationProperty", "Directory", "Grant", "Revoke", "TruncateTable", "Show",
            "Export", "Kill", "Declare", "Summarize", "Placeholder", "Parameter", "SessionParameter", "Heredoc",
            "QueryTransform",  # SELECT TRANSFORM(…) USING 'script': runs a program on the engine's host
        )
    )
    if t is not None
)

# Scalar functions that call into the JVM, read files, or reveal where data lives.
_FORBIDDEN_FUNCTIONS = frozenset(
    {
        "reflect", "java_method", "try_reflect", "input_file_name", "input_file_block_start", "input_file_block_length",
        "read_files", "read_csv", "read_json", "read_parquet", "read_text", "range", "identifier", "load_file",
        "current_catalog", "current_database", "current_schema", "current_user", "session_user", "user",
    }
)

_ZONES_WITH_TABLES = ("bronze", "silver", "gold", "open", "quarantine")
# Raw records as delivered, sealed ones among them: only a role that may see sealed records reads them.
_RAW_ZONES = ("bronze", "quarantine")


class SqlRefused(ValueError):
    """A query ``lawlake sql`` does not run: not a single read-only query over logical lake names, or not allowed."""


@dataclass(frozen=True)
class TableRef:
    """A logical table a query reads, optionally at a published version (``gold.case_chain@v3``)."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@v{self.version}"


@dataclass(frozen=True)
class ParsedQuery:
    """A checked query: its syntax tree and the logical tables it reads, in order of first use."""

    text: str
    tree: exp.Expression
    tables: tuple[TableRef, ...]


# -- checking ------------------------------------------------------------------------------------


def _mark_versions(query: str) -> str:
    """``name@vN`` → ``name__lawlake_at_vN``, found by tokens so strings and comments are left alone."""
    try:
        tokens = Spark().tokenize(query)
    except SqlglotError as exc:
        raise SqlRefused(f"the query cannot be parsed: {exc}") from None
    for tok in tokens:
        if tok.token_type in (TokenType.VAR, TokenType.IDENTIFIER) and _VERSION_MARK in tok.text.lower():
            raise SqlRefused(f"{tok.text!r} is not a table or column name lawlake accepts")
    out, last = [], 0
    for prev, at, ver in zip(tokens, tokens[1:], tokens[2:]):
        if at.token_type != TokenType.PARAMETER or at.text != "@":
            continue
        if ver.token_type != TokenType.VAR or not re.fullmatch(r"v\d+", ver.text, re.IGNORECASE):
            continue
        if prev.end + 1 != at.start or at.end + 1 != ver.start or prev.token_type != TokenType.VAR:
            continue
        out.append(query[last : at.start])
        out.append(_VERSION_MARK + ver.text[1:])
        last = ver.end + 1
    out.append(query[last:])
    return "".join(out)


def _cte_names_in_scope(table: exp.Table) -> set[str]:
    """Names of the CTEs visible where ``table`` is used: those of every enclosing WITH."""
    names: set[str] = set()
    node: exp.Expr | None = table  # sqlglot's base node type (exp.Expression is its older alias)
    while node is not None:
        with_ = node.args.get("with_") or node.args.get("with")
        if isinstance(with_, exp.With):
            names.update(cte.alias_or_name.lower() for cte in with_.expressions)
        node = node.parent
    return names


def _logical_name(table: exp.Table) -> TableRef:
    """The logical lake name a table reference spells, or :class:`SqlRefused`."""
    if not isinstance(table.this, exp.Identifier):
        raise SqlRefused(f"{table.sql(DIALECT)} is not a table: table-valued and file functions are not allowed")
    if table.args.get("version") is not None:
        raise SqlRefused(f"{table.sql(DIALECT)}: name a past version as name@vN (e.g. gold.case_chain@v3)")
    parts = [p.name for p in (table.args.get("catalog"), table.args.get("db"), table.this) if p is not None and p.name]
    quoted = [p for p in (table.args.get("catalog"), table.args.get("db"), table.this) if isinstance(p, exp.Identifier) and p.quoted]
    version = None
    m = _MARKED.match(parts[-1].lower())
    if m:
        parts[-1], version = m.group("name"), int(m.group("version"))
    name = ".".join(p.lower() for p in parts)
    if _VERSION_MARK in name:
        raise SqlRefused(f"{table.sql(DIALECT)}: a table takes at most one @vN")
    if any(("/" in p or "\\" in p or ":" in p) for p in parts) or (quoted and parts[0].lower() not in (*_ZONES_WITH_TABLES, "share")):
        raise SqlRefused(f"{table.sql(DIALECT)}: path-based relations are not allowed; name tables by their logical names (gold.case_chain)")
    try:
        tables.parse_name(name)
    except TableNameError:
        raise SqlRefused(
            f"{table.sql(DIALECT)} is not a lake table: name tables bronze.x, silver.x, gold.x, open.x, quarantine.x or share.<partner>.x "
            "(name@vN for a published version), or a CTE of the query"
        ) from None
    return TableRef(name, version)


def check(query: str) -> ParsedQuery:
    """The query, if it is exactly one read-only query over logical lake names; :class:`SqlRefused` otherwise."""
    if not query or not query.strip():
        raise SqlRefused("the query is empty")
    marked = _mark_versions(query)
    try:
        statements = [s for s in sqlglot.parse(marked, read=DIALECT, error_level=sqlglot.ErrorLevel.RAISE) if s is not None]
    except SqlglotError as exc:
        raise SqlRefused(f"the query cannot be parsed, so it is not run: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise SqlRefused(f"exactly one statement is allowed, got {len(statements)}")
    (tree,) = statements
    for hint in list(tree.find_all(exp.Hint)):
        hint.pop()  # optimizer hints are dropped: they name tables outside the FROM clause and change no result
    if not isinstance(tree, (exp.Select, exp.SetOperation, exp.Values, exp.Subquery)):
        what = _kind(tree) if isinstance(tree, (exp.Command, exp.DDL, exp.DML, exp.Set, exp.Use, exp.Cache, exp.Refresh, exp.Analyze, exp.Describe)) else repr(query.split()[0].upper())
        raise SqlRefused(f"only read-only queries (SELECT, WITH … SELECT, UNION/INTERSECT/EXCEPT, VALUES) are allowed, not {what}")
    refs: list[TableRef] = []
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN):
            raise SqlRefused(f"{_kind(node)} is not allowed: analyst SQL is read-only")
        if isinstance(node, exp.Func):
            fname = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if fname in _FORBIDDEN_FUNCTIONS:
                raise SqlRefused(f"function {fname}() is not allowed in analyst SQL")
        if isinstance(node, exp.Table):
            if not node.args.get("db") and not node.args.get("catalog") and isinstance(node.this, exp.Identifier):
                if node.name.lower() in _cte_names_in_scope(node) and _MARKED.match(node.name.lower()) is None:
                    continue
            ref = _logical_name(node)
            if ref not in refs:
                refs.append(ref)
    return ParsedQuery(text=query, tree=tree, tables=tuple(refs))


def _kind(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return f"the {str(node.this).upper()} command"
    return type(node).__name__.upper()


# -- the sealed-access role ------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessRole:
    """A role an analyst may take: whether it shows sealed records, and which OS users may take it."""

    name: str
    purpose: str
    sees_sealed: bool
    users: frozenset[str]
    requires_reason: bool = True


@dataclass(frozen=True)
class AccessPolicy:
    roles: Mapping[str, AccessRole] = field(default_factory=dict)


@dataclass(frozen=True)
class Grant:
    """A role taken for one query: by whom and why."""

    role: AccessRole
    user: str
    reason: str


def load_access(path: str | Path | None = None) -> AccessPolicy:
    """The access policy (``schemas/access.yaml``): ``roles: {name: {purpose, sees_sealed, users: [os users]}}``."""
    path = Path(path or ACCESS_POLICY)
    if not path.exists():
        return AccessPolicy()  # no policy: no role can be taken
    doc = read_yaml(path) or {}
    roles = {}
    for name, spec in (doc.get("roles") or {}).items():
        if not isinstance(spec, dict) or not isinstance(spec.get("users", []), list):
            raise ValueError(f"{path}: role {name!r} must be a mapping with purpose, sees_sealed and a list of users")
        roles[str(name)] = AccessRole(
            name=str(name), purpose=str(spec.get("purpose", "")), sees_sealed=spec.get("sees_sealed") is True,
            users=frozenset(str(u) for u in spec.get("users") or []), requires_reason=spec.get("requires_reason", True) is not False,
        )
    return AccessPolicy(roles)


def authorize(policy: AccessPolicy, role: str | None, reason: str | None, *, user: str | None = None) -> Grant | None:
    """The grant for ``role`` taken by ``user`` (default: this OS user) with ``reason``; None without a role."""
    if role is None:
        if reason:
            raise SqlRefused("--reason is given without --role")
        return None
    user = user or getpass.getuser()
    r = policy.roles.get(role)
    if r is None:
        raise SqlRefused(f"role {role!r} is not defined in the access policy (defined: {', '.join(sorted(policy.roles)) or 'none'})")
    if user not in r.users:
        raise SqlRefused(f"user {user!r} may not take role {role!r} (the access policy allows: {', '.join(sorted(r.users)) or 'nobody'})")
    if r.requires_reason and not (reason or "").strip():
        raise SqlRefused(f"role {role!r} needs a reason (--reason \"…\"): the statutory procedure this query serves")
    return Grant(r, user, (reason or "").strip())


# -- hiding sealed records -----------------------------------------------------------------------------

# Views without the role: how a table's rows are matched against gold.sealed_records.
_SEALED_BY_CHAIN = ("gold.case_chain", "gold.time_limit_warnings")


def _silver_key(name: str) -> str:
    from lawlake import contracts

    key = contracts.load(name).primary_key
    if len(key) != 1:
        raise SqlRefused(f"{name} has no single-column primary key to match sealed records on, so it is not shown")
    return key[0]


def _needs_sealed_list(name: str) -> bool:
    """Whether a table can be shown without the role only after removing the records ``gold.sealed_records`` lists."""
    zone = name.split(".")[0]
    return zone in ("silver", "gold", "share") and name != SEALED_RECORDS


def _refuse_raw(name: str) -> None:
    if name.split(".")[0] in _RAW_ZONES or name == SEALED_RECORDS:
        raise SqlRefused(f"{name} holds sealed records as they are: it is readable only with a role that may see sealed records")


def hide_sealed(name: str, df: DataFrame, sealed: DataFrame) -> DataFrame:
    """The rows of table ``name`` an analyst without the role may see: ``df`` without what ``sealed`` lists.

    ``sealed`` has the columns of ``gold.sealed_records`` (source_table, record_key, chain_id,
    person_key, seal_status). Refuses tables it cannot filter safely.
    """
    from pyspark.sql import functions as F

    _refuse_raw(name)
    zone = name.split(".")[0]
    if zone == "open":
        return df
    if zone == "silver":
        key = _silver_key(name)
        keys = sealed.where(F.col("source_table") == F.lit(name)).select(F.col("record_key").alias("_sealed_key")).distinct()
        return df.join(keys, df[key].cast("string") == keys["_sealed_key"], "left_anti")
    if name == "gold.person_records":
        refs = sealed.select(F.concat(F.col("source_table"), F.lit(":"), F.col("record_key")).alias("_sealed_ref")).distinct()
        return df.join(refs, df["record_ref"] == refs["_sealed_ref"], "left_anti")
    if name == "gold.person_index":
        persons = sealed.where(F.col("person_key").isNotNull()).select(F.col("person_key").alias("_sealed_person")).distinct()
        return df.join(persons, df["person_key"] == persons["_sealed_person"], "left_anti")
    if zone == "share" and "chain_id" not in df.columns:
        return df  # the share stage already excluded sealed records; there is no chain to check again
    if "chain_id" in df.columns:  # gold.case_chain, gold.time_limit_warnings, share.* and any other table of chains
        chains = sealed.where(F.col("chain_id").isNotNull()).select(F.col("chain_id").alias("_sealed_chain")).distinct()
        out = df.join(chains, df["chain_id"] == chains["_sealed_chain"], "left_anti")
        if "is_sealed" in df.columns:  # fail closed: a chain flagged sealed, or not known to be unsealed, stays hidden
            out = out.where(~F.coalesce(F.col("is_sealed"), F.lit(True)))
        return out
    raise SqlRefused(f"{name} has no chain_id, record or person key to hide sealed records by, so it is not shown without the role")


# -- resolving and running -----------------------------------------------------------------------------


def _view_name(ref: TableRef, tag: str) -> str:
    base = ref.name.replace(".", "__")
    return f"lawlake_{tag}_{base}" + ("" if ref.version is None else f"__v{ref.version}")


def _version_to_read(lake: Path, ref: TableRef, versions: Mapping[str, int] | None) -> int | None:
    path = tables.location(lake, ref.name)
    current = tables.version(path)
    if current is None:
        raise SqlRefused(f"no published table {ref.name} in {lake}")
    if ref.version is not None:
        if ref.version > current:
            raise SqlRefused(f"{ref}: {ref.name} has no version {ref.version} (its latest is v{current})")
        return ref.version
    if versions is None:
        return None
    if ref.name not in versions:
        raise SqlRefused(f"{ref.name} is not part of the current release, so it is not shown")
    return int(versions[ref.name])


def resolve(
    spark: SparkSession,
    lake: Path,
    parsed: ParsedQuery,
    *,
    versions: Mapping[str, int] | None = None,
    grant: Grant | None = None,
) -> str:
    """Register a temporary view per table the query reads and return the SQL to run over those views.

    ``versions`` maps logical names to the Delta version to read (the latest complete stage
    release); None reads each table's latest version. ``name@vN`` reads version N. Without
    a ``grant`` whose role sees sealed records, each view hides what ``gold.sealed_records``
    lists; with one, views read the tables as published.
    """
    lake = Path(lake)
    sees_sealed = grant is not None and grant.role.sees_sealed
    sealed_df = None
    if not sees_sealed and any(r.name.split(".")[0] != "open" for r in parsed.tables):
        for r in parsed.tables:  # refused before anything is read
            _refuse_raw(r.name)
        sealed_ref = TableRef(SEALED_RECORDS)
        if tables.version(tables.location(lake, SEALED_RECORDS)) is None:
            needing = ", ".join(r.name for r in parsed.tables if _needs_sealed_list(r.name))
            raise SqlRefused(
                f"{SEALED_RECORDS} is not published, so sealed records cannot be hidden: {needing} cannot be queried until integrate publishes it"
            )
        sealed_df = tables.read(spark, tables.location(lake, SEALED_RECORDS), version=_version_to_read(lake, sealed_ref, versions))
    tag = secrets.token_hex(4)
    views: dict[TableRef, str] = {}
    for ref in parsed.tables:
        df = tables.read(spark, tables.location(lake, ref.name), version=_version_to_read(lake, ref, versions))
        if not sees_sealed and ref.name.split(".")[0] != "open":
            assert sealed_df is not None
            df = hide_sealed(ref.name, df, sealed_df)
        view = _view_name(ref, tag)
        df.createOrReplaceTempView(view)
        views[ref] = view

    tree = parsed.tree.copy()

    def swap(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
            return node
        if not node.args.get("db") and not node.args.get("catalog") and node.name.lower() in _cte_names_in_scope(node):
            if _MARKED.match(node.name.lower()) is None:
                return node
        ref = _logical_name(node)
        alias = node.args.get("alias")
        if alias is None or isinstance(alias.this, exp.Parameter):
            alias = exp.TableAlias(this=exp.to_identifier(ref.name.split(".")[-1]))
        new = exp.Table(this=exp.to_identifier(views[ref]), alias=alias)
        for key in ("joins", "laterals", "pivots", "sample", "hints"):
            if node.args.get(key):
                new.set(key, node.args[key])
        return new

    return tree.transform(swap).sql(dialect=DIALECT, comments=False)


def run(
    spark: SparkSession,
    lake: Path,
    query: str,
    *,
    versions: Mapping[str, int] | None = None,
    role: str | None = None,
    reason: str | None = None,
    access: AccessPolicy | None = None,
    catalog_url: str | None = None,
    user: str | None = None,
    audit: Callable[..., None] | None = None,
) -> DataFrame:
    """The result of an analyst query as a DataFrame, checked, resolved and (with a role) audited first.

    A role needs the access policy to allow it for ``user`` (default: this OS user) and a
    reason; its query is written to the catalog's ``sql_access_audit`` (``catalog_url``)
    before it runs, so an access that cannot be audited does not happen.
    """
    parsed = check(query)
    grant = authorize(access if access is not None else load_access(), role, reason, user=user)
    sql_text = resolve(spark, lake, parsed, versions=versions, grant=grant)
    if grant is not None:
        if audit is None:
            if not catalog_url:
                raise SqlRefused("a role's queries are audited in the catalog: catalog_url is required")
            from lawlake.sharing.store import ShareStore

            audit = ShareStore(catalog_url).record_sql_access
        audit(user=grant.user, role=grant.role.name, reason=grant.reason, query=query, tables=json.dumps([str(t) for t in parsed.tables]))
    return spark.sql(sql_text)
