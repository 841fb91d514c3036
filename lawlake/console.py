"""Printing for the command line through rich: tables (CJK characters take two columns) and a run's live progress.

:class:`RunProgress` shows one line per lifecycle task, fed by the events the tasks append
to ``<lake>/_runs/<run_id>/events.jsonl`` (:mod:`lawlake.events`); on a terminal it is a
live display, otherwise (a pipe, a CI log) one plain line per event.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["print_table", "RunProgress", "TASKS"]

TASKS = tuple(t for s in ("gather", "normalize", "integrate", "share", "open") for t in (s, f"gate_{s}"))


def _console(out=None) -> Console:
    out = out or sys.stdout  # the current stdout, not the one at import time
    # Not a terminal: no colours, no wrapping (a pipe or a file gets the whole row on one line).
    return Console(file=out, width=None if out.isatty() else 10_000, no_color=not out.isatty(), highlight=False, soft_wrap=False)


def print_table(rows: list[dict], columns: list[str] | None = None, *, out=None) -> None:
    """Rows as an aligned table (rich measures East Asian wide characters as two columns)."""
    console = _console(out)
    if not rows:
        console.print("(no rows)")
        return
    columns = columns or list(rows[0])
    table = Table(*columns, box=None, show_edge=False, pad_edge=False, header_style="bold", show_lines=False)
    for r in rows:
        table.add_row(*[("" if r.get(c) is None else str(r.get(c))) for c in columns])
    console.print(table, markup=False)


_STYLE = {"waiting": "dim", "running": "yellow", "success": "green", "failed": "bold red"}


class RunProgress:
    """A run's tasks and their states, followed from its events file until :meth:`stop`."""

    def __init__(self, lake: Path, run_id: str, *, out=None, interval: float = 0.5):
        self.lake, self.run_id, self.interval = Path(lake), run_id, interval
        self.out = out or sys.stdout
        self.live = self.out.isatty()
        self.states: dict[str, dict] = {t: {"state": "waiting"} for t in TASKS}
        from lawlake import events

        feed = events.events_path(self.lake, run_id)
        self._offset = feed.stat().st_size if feed.is_file() else 0  # a rerun of a run id shows only its own events
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()

    # -- feeding ---------------------------------------------------------------------
    def poll(self) -> list[dict]:
        """Read the events appended since the last poll and apply them; return them."""
        from lawlake import events

        new, self._offset = events.read(self.lake, self.run_id, offset=self._offset)
        for e in new:
            if e.get("task") in self.states:
                self.states[e["task"]] = e
            if not self.live:
                print("  " + self.line(e), file=self.out, flush=True)
        return new

    @staticmethod
    def detail(e: dict) -> str:
        """A finished task's counts and message: ``8 tables, 12,345 rows`` or ``release 4``."""
        counts = [f"{e['tables']} tables" if "tables" in e else "", f"{e['rows']:,} rows" if "rows" in e else "",
                  f"{e['quarantined']:,} quarantined" if e.get("quarantined") else "", f"release {e['release']}" if e.get("release") else ""]
        text = ", ".join(c for c in counts if c)
        if e.get("message"):
            text = (text + " — " if text else "") + str(e["message"])[:200]
        return text

    @classmethod
    def line(cls, e: dict) -> str:
        """One event as a plain line: ``gate_normalize: success in 12.3s (release 4, 8 tables)``."""
        text = f"{e['task']}: {e['state']}" + (f" in {e['seconds']:.1f}s" if e.get("seconds") is not None else "")
        detail = cls.detail(e)
        return text + (f" ({detail})" if detail else "")

    def render(self) -> Table:
        table = Table("task", "state", "seconds", "detail", box=None, pad_edge=False, title=f"lawlake run {self.run_id}", title_justify="left")
        for task, e in self.states.items():
            state = e["state"]
            seconds = f"{e['seconds']:.1f}" if e.get("seconds") is not None else ""
            table.add_row(Text(task), Text(state, style=_STYLE.get(state, "")), seconds, Text(self.detail(e)))
        return table

    # -- running -------------------------------------------------------------------------
    def _follow(self) -> None:
        if self.live:
            from rich.live import Live

            with Live(self.render(), console=_console(self.out), refresh_per_second=4, transient=False) as live:
                while not self._stop.is_set():
                    if self.poll():
                        live.update(self.render())
                    self._stop.wait(self.interval)
                self.poll()
                live.update(self.render())
        else:
            while not self._stop.is_set():
                self.poll()
                self._stop.wait(self.interval)
            self.poll()

    def __enter__(self) -> RunProgress:
        self._thread = threading.Thread(target=self._follow, name="lawlake-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
