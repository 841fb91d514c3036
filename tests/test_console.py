"""Tables printed through rich (CJK columns aligned) and the run progress fed by the events file."""

from __future__ import annotations

import io

from rich.cells import cell_len

from lawlake import events
from lawlake.console import RunProgress, print_table


def test_chinese_columns_align():
    out = io.StringIO()
    print_table([{"court": "杭州市上城区人民法院", "n": 3}, {"court": "abc", "n": 12}], out=out)  # wide characters take two cells
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["court", "n"]
    # the second column starts at the same terminal cell on every line
    starts = [cell_len(line[: line.rstrip().rfind(" ") + 1]) for line in lines]
    assert len(set(starts)) == 1, lines


def test_no_rows():
    out = io.StringIO()
    print_table([], out=out)
    assert out.getvalue().strip() == "(no rows)"


def test_markup_in_values_is_printed_as_is():
    out = io.StringIO()
    print_table([{"rule": "[bold]x[/bold]"}], out=out)
    assert "[bold]x[/bold]" in out.getvalue()  # data is never rich markup


def test_progress_prints_plain_lines_when_not_a_terminal(tmp_path):
    out = io.StringIO()  # not a tty
    events.report(tmp_path, "r", "gather", "running")  # an earlier attempt's event: not shown
    progress = RunProgress(tmp_path, "r", out=out)
    events.report(tmp_path, "r", "gather", "success", seconds=2.0, tables=7, rows=1234, quarantined=5)
    events.report(tmp_path, "r", "gate_gather", "failed", seconds=0.5, message="gate gather failed")
    progress.poll()
    assert out.getvalue().splitlines() == [
        "  gather: success in 2.0s (7 tables, 1,234 rows, 5 quarantined)",
        "  gate_gather: failed in 0.5s (gate gather failed)",
    ]
    assert progress.states["gate_gather"]["state"] == "failed" and progress.states["normalize"]["state"] == "waiting"


def test_a_half_written_line_waits(tmp_path):
    events.report(tmp_path, "r", "gather", "running")
    path = events.events_path(tmp_path, "r")
    with path.open("a") as f:
        f.write('{"task": "gate_ga')  # a writer mid-line
    feed, offset = events.read(tmp_path, "r")
    assert [e["task"] for e in feed] == ["gather"] and offset < path.stat().st_size


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_live_table_on_a_terminal(tmp_path):
    import time

    out = _Terminal()
    with RunProgress(tmp_path, "r", out=out, interval=0.05) as progress:
        events.report(tmp_path, "r", "gather", "success", seconds=1.5, tables=7, rows=10)
        events.report(tmp_path, "r", "gate_gather", "running")
        deadline = time.monotonic() + 10
        while progress.states["gate_gather"]["state"] != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
    text = out.getvalue()
    assert "lawlake run r" in text and "7 tables, 10 rows" in text  # the live table's rows, not plain lines
    assert "  gather: success" not in text
    assert progress.states["gather"]["state"] == "success" and progress.states["normalize"]["state"] == "waiting"
