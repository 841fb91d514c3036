"""The Spark expressions agree with the Python reference on JVM Spark too.

Sail evaluates regular expressions with Rust's regex crate, JVM Spark with
java.util.regex, and the two differ in corners (``\\s``, ``\\d``, ``$`` before a
line terminator, replacement syntax). The rules are written in their common
subset; this differential test proves it on the batches of test_spark_rules.py.

JVM Spark Connect ``local[2]`` ships in the pyspark wheel (no Delta needed) but
takes 10–20 s to start and to compile the expressions: behind the ``jvm`` marker.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from pprint import pformat
from typing import Any

import pytest
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]


def _load_property_tests():
    # The strategies and the rule table live in the Sail property tests; test modules
    # are not importable by name under --import-mode=importlib, so load it by path.
    spec = importlib.util.spec_from_file_location(
        "_rules_property_tests", Path(__file__).with_name("test_spark_rules.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


props = _load_property_tests()

# Runs in a child process: a local JVM Spark Connect session rewires pyspark's
# process-wide connect mode (environment variables), which must not leak into the
# Sail session the other tests share.
JVM_SCRIPT = """
import json, sys
from pyspark.sql import SparkSession
from lawlake.rules import spark as rules

values, key, out = json.loads(sys.stdin.read()), sys.argv[1].encode(), sys.argv[2]
spark = SparkSession.builder.remote("local[2]").getOrCreate()
exprs = {
    "case_number": rules.case_number, "court_level": rules.court_level, "court_region": rules.court_region,
    "id_number": rules.id_number, "id_mask": rules.id_mask, "id_pseudonym": lambda c: rules.id_pseudonym(c, key),
    "parse_date": rules.parse_date, "person_name": rules.person_name,
    "charge_text": rules.charge_text, "charge_code": rules.charge_code,
}
df = spark.createDataFrame(list(enumerate(values)), "i int, text string")
rows = df.select("i", *(e(df["text"]).alias(n) for n, e in exprs.items())).collect()
with open(out, "w") as f:
    json.dump([r.asDict(recursive=True) for r in sorted(rows, key=lambda r: r["i"])], f, default=str)
spark.stop()
"""


def _json(value: Any) -> Any:
    """A Python reference result in the JSON form the child process writes (dates as ISO strings)."""
    return json.loads(json.dumps(props._plain(value), default=str))


@pytest.mark.jvm
def test_jvm_spark_agrees_with_python(tmp_path: Path) -> None:
    if shutil.which("java") is None:
        pytest.skip("no Java runtime for JVM Spark")
    values = props.EXAMPLES + props.collect(
        st.one_of(
            props.mangled(props.current_numbers), props.mangled(props.legacy_numbers),
            props.mangled(props.courts), props.mangled(props.ids18), props.mangled(props.ids18_any_date),
            props.mangled(props.ids15), props.mangled(props.real_dates), props.mangled(props.date_texts),
            props.person_names, props.mangled(props.charges), props.garbage,
        ),
        n=600,
    )  # fmt: skip
    out = tmp_path / "jvm.json"
    subprocess.run(
        [sys.executable, "-c", JVM_SCRIPT, props.KEY.decode(), str(out)],
        input=json.dumps(values),
        text=True,
        check=True,
        capture_output=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    rows = json.loads(out.read_text())
    assert len(rows) == len(values)
    found = [
        {"text": text, "rule": name, "python": _json(reference_rule(text)), "jvm": row[name]}
        for text, row in zip(values, rows, strict=True)
        for name, (_, reference_rule) in props.RULES.items()
        if _json(reference_rule(text)) != row[name]
    ]
    assert not found, f"{len(found)} disagreements, e.g.:\n{pformat(found[:15], width=120)}"
