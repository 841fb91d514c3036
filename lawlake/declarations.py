"""Tables declared as data: what a stage builds, from which inputs, and where every input row goes.

A stage module in ``jobs/`` exports one :class:`Stage`: its tables, each a
:class:`Table` naming its logical name, its inputs (logical names), its pure builder and
how its rows reconcile. The runner (:mod:`lawlake.pipeline`) does the rest the same way
for every table — read the inputs at their released versions, build, enforce the
contract, write the candidate, count, quarantine, gate, publish as one release — so a job
never opens a path, a session or the catalog.

Inputs are logical names: a published table (``silver.suspects``, read at its version
in the latest complete release), a table built earlier in the same stage (its
candidate, read back), a work table (``work.<name>``: materialized for this run only,
never published) or a reference list (``reference.regions``, ``reference.charges``,
``reference.charge_variants``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from lawlake.contracts import Contract
    from quality.gate import Suite

__all__ = ["Params", "Built", "Incremental", "ByScope", "ByReach", "Table", "Stage", "TALLY_FIELDS", "is_work", "is_reference"]

# What a table's tally may count. rows_out is counted by the runner on the written candidate,
# unless the table reconciles in another unit than its rows (open data: police cases).
TALLY_FIELDS = ("rows_in", "rows_out", "rows_quarantined", "rows_merged", "rows_excluded", "fields_quarantined")


@dataclass(frozen=True)
class Params:
    """Run parameters a builder may ask for by name (``Table.params``); nothing else reaches a builder."""

    run_id: str
    started_at: datetime  # when the run started (lineage: ingested-at)
    data_date: date  # the date the run's data describes: "today" for deadlines and expiries, never the wall clock
    sources: Path | None = None  # the agencies' exports (gather)
    min_cell: int = 10  # smallest count an open dataset may publish
    warning_days: int = 5  # an open stage this many days or fewer before its statutory deadline is warned about
    secret_key: bytes = b""  # pseudonyms (share)
    watermarks: Mapping[str, str] = field(default_factory=dict)  # source feed -> last released watermark (gather)
    ingested: Mapping[str, Mapping[str, list[str]]] = field(default_factory=dict)  # source feed -> {sha256: [paths]} released (gather)
    endpoints: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # online source -> {"url", "token"} (gather; lawlake.connections)
    lake: Path | None = None  # the lake, for engine-free reads of released tables by delta-rs (gather's record hashes, in its workers)
    versions: Mapping[str, int] = field(default_factory=dict)  # table -> its version in the latest complete release
    new_input: bool | None = None  # the stage's hint that its sources hold something new (Stage.expects_new; None: no hint)


@dataclass(frozen=True)
class Built:
    """What a builder returns when a DataFrame alone does not say it all (gather reads Python rows)."""

    frame: DataFrame | list[dict] | pa.Table | Path  # the table's rows; Python rows (or lawlake.contracts.arrow_rows of them) are typed by the contract
    quarantine: DataFrame | list[dict] | None = None  # quarantine rows (lawlake.pipeline.REJECT_COLUMNS)
    tally: Mapping[str, int] | None = None  # counts already known (see TALLY_FIELDS)
    ingested: list[dict] = field(default_factory=list)  # files to record as ingested on release
    watermarks: Mapping[str, str] = field(default_factory=dict)  # watermarks to record on release
    notes: Mapping[str, Any] = field(default_factory=dict)
    metrics: list[dict] | None = None  # rule pass counts for the gate's thresholds, when the builder knows them (see Table.metrics)


@dataclass(frozen=True)
class Incremental:
    """How a table is rebuilt for only what new rows of one append-only input reach.

    The builder must be a function of each scope value's input rows alone (its windows
    and aggregates partitioned by the scope), and the scope value it gives a source row a
    function of that row alone: then the runner builds the rows of every scope value the
    new input rows carry, from all their input rows, and keeps the published rows (and
    quarantine rows) of every other scope value as they are — the same table a full
    rebuild gives (``tests/test_incremental.py`` proves it). Every build keeps each source
    row's scope value (under ``<lake>/_keys/``), so the next one builds only the new rows
    to learn theirs.
    """

    source: str  # the append-only input (a bronze table) whose new rows decide what is rebuilt
    scope: str  # the built frame's column of the unit rebuilt whole (every version of one key)
    key: str  # the table's column holding the same value (its rows kept or replaced by it)
    # a quarantine row's scope value from its record_key, when the two differ (default: the record_key itself)
    quarantine_scope: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class ByScope:
    """How a table is rebuilt for only the scope values whose input rows changed, whatever the input.

    The table has one input, and its builder must be a function of each scope value's rows
    of it alone (its windows and aggregates partitioned by the scope). With each build the
    runner keeps a digest of every scope value's input rows (their count and an
    order-free sum of row hashes, under ``<lake>/_scopes/``); a later build of the same
    code rebuilds the scope values whose digest changed, appeared or went, from their
    input rows, and keeps the published rows of every other — the same table a full
    rebuild gives (``tests/test_incremental.py`` proves it). Unlike :class:`Incremental`
    the input need not be append-only: a row changed or gone changes its scope's digest.
    """

    scope: str  # the input's column: the rows of one value (null is a value) are built together
    key: str  # the column the table's rows and the input's rows share: a table row is kept when its key's input rows are untouched


@dataclass(frozen=True)
class ByReach:
    """How a published table (``target``) is rebuilt for only the scope values the changed rows of its inputs reach.

    Declared on a work table of the scope values a build of ``target`` covers (one column,
    ``scope``); ``target``'s builders restrict their rows to them, and must be functions of
    each scope value's rows alone once restricted so. Its ``build`` gives every scope
    value (a whole build). With each build of ``target`` the runner keeps a hash of every
    row of each input named in ``columns`` with those columns (under ``<lake>/_rows/``); a
    later build of the same code hands ``reach`` the changed rows — rows whose hash is new
    or gone, from both versions — as one table of ``(input, column, value)``, each value
    of those columns as a string, and ``reach`` returns the scope values they can touch.
    The runner then replaces ``target``'s published rows of those scope values (gone ones
    included) with the new build's and keeps every other — the same table a full rebuild
    gives (``tests/test_incremental.py`` proves it). Touching more scope values than
    needed costs time only; ``reach`` must never miss one.
    """

    target: str  # the published table whose rows are replaced by scope value
    scope: str  # the column of the scope values, in this work table and in ``target``
    columns: Mapping[str, tuple[str, ...]]  # input -> the columns a changed row hands to ``reach``
    reach: Callable[..., DataFrame]  # reach(changed: (input, column, value), *inputs) -> the scope values touched


@dataclass(frozen=True)
class Table:
    """One table a stage builds.

    - ``build(*inputs, **params)`` returns the built frame (a DataFrame or :class:`Built`);
    - ``rows(built)``: the table's rows, when the built frame holds more (e.g. every
      version of every record, marked); default: the built frame itself;
    - ``quarantine(built, *inputs)``: the rows it rejects, as quarantine records;
    - ``tally(built, *inputs)``: where the input rows went (:data:`TALLY_FIELDS`); without
      it (and without ``Built.tally``) the table is derived and not reconciled;
    - ``metrics(built)``: each rule's applicable and rejected counts, for the gate's thresholds;
    - ``start(*inputs, spill_to=..., **params)``: starts the build in the background and
      returns a Future of what ``build`` returns (or ``None``: built here). The runner
      starts every such table of a stage before it builds the first, so their builds run
      side by side (gather's sources, in worker processes); ``spill_to`` is a folder under
      the run's staging where a large result may be written as Parquet.
    """

    name: str
    build: Callable[..., Any]
    inputs: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    mode: Literal["overwrite", "append"] = "overwrite"
    optional: tuple[str, ...] = ()  # inputs that may not be published yet (passed as None)
    rows: Callable[[DataFrame], DataFrame] | None = None
    quarantine: Callable[..., DataFrame] | None = None
    tally: Callable[..., Mapping[str, int]] | None = None
    metrics: Callable[[DataFrame], list[dict]] | None = None
    contract: Contract | None = None  # None: schemas/<zone>/<table>.yaml
    suite: Suite | None = None  # None: quality/gx/expectations/<zone>/<table>.json
    materialize: bool = True  # write the built frame once and read it back: it is used several times
    incremental: Incremental | None = None  # rebuilt for the keys new input rows touch, when only that input changed
    by_scope: ByScope | None = None  # rebuilt for the scope values whose input rows changed (its one input)
    by_reach: ByReach | None = None  # a work table: the scope values of another table a build covers (see ByReach)
    start: Callable[..., Any] | None = None  # starts the build in the background (see above)

    @property
    def is_work(self) -> bool:
        return is_work(self.name)


@dataclass(frozen=True)
class Stage:
    """A stage: its tables in build order (or a function of the run's parameters giving them)."""

    name: str
    tables: tuple[Table, ...] | Callable[[Params], tuple[Table, ...]]
    doc: str = ""
    atomic: bool = False  # its tables are judged together: rebuilt all, or none, when an input changed
    done: Callable[[], None] | None = None  # called when its builds are over, failed or not (gather stops its worker processes)
    # an append stage (gather): whether its sources likely hold something new, judged cheaply before anything is read;
    # the runner then imports the gate at once, instead of when the first new rows arrive (a hint: never decides what is read)
    expects_new: Callable[[Params], bool] | None = None

    def declared(self, params: Params) -> tuple[Table, ...]:
        return self.tables(params) if callable(self.tables) else self.tables


def is_work(name: str) -> bool:
    return name.startswith("work.")


def is_reference(name: str) -> bool:
    return name.startswith("reference.")
