"""The OpenLineage provider's custom extractor for the lifecycle DAG's TaskFlow tasks.

Registered through the provider's documented ``[openlineage] extractors`` option
(``AIRFLOW__OPENLINEAGE__EXTRACTORS=lawlake.lineage_airflow.LifecycleExtractor``; ``lawlake
run`` sets it). ``@task`` tasks are ``_PythonDecoratedOperator``s, which the provider has no
extractor for; this one hands it the report each stage and gate task wrote
(:func:`lawlake.lineage.write_report`), so Airflow's START/COMPLETE/FAIL events name the
same datasets, with the same facets, as an in-process run. Tasks of other DAGs, and the
lifecycle's ``start``/``finish``, get no datasets from it.
"""

from __future__ import annotations

from pathlib import Path

from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage

from lawlake import lineage

__all__ = ["LifecycleExtractor"]

STAGES = ("gather", "normalize", "integrate", "share", "open")


class LifecycleExtractor(BaseExtractor):
    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["_PythonDecoratedOperator"]

    def _task(self) -> str | None:
        if getattr(self.operator, "dag_id", None) != lineage.DAG_ID:
            return None
        task = self.operator.task_id
        return task if task.removeprefix("gate_") in STAGES else None

    def _execute_extraction(self) -> OperatorLineage | None:
        # START: the tables the stage builds (a stage's outputs, a gate's inputs), cheaply from the contracts,
        # in the lake the worker's environment names (LAWLAKE_LAKE, which `lawlake run` sets).
        task = self._task()
        if task is None:
            return OperatorLineage()
        from lawlake import config

        lake = config.load().lake
        names = [n for n in lineage.published_by_stage()[task.removeprefix("gate_")] if n != lineage.QUARANTINE]
        ds: list[dict] = [{"name": n, "namespace": None, "version": None, "rows": None, "fields": [], "assertions": None} for n in names]
        report = {"lake": str(lake), "inputs": ds if task.startswith("gate_") else [], "outputs": [] if task.startswith("gate_") else ds}
        inputs, outputs = lineage.datasets(report)
        return OperatorLineage(inputs=inputs, outputs=outputs)  # type: ignore[arg-type]

    def extract_on_complete(self, task_instance) -> OperatorLineage | None:
        task = self._task()
        if task is None:
            return OperatorLineage()
        params = task_instance.get_template_context()["params"]
        from lawlake import config

        lake = config.load(lake=params.get("lake") or None).lake
        report = lineage.read_report(Path(lake), lineage.lawlake_run_id(params.get("run_id"), task_instance.run_id), task)
        if report is None:
            return OperatorLineage()
        inputs, outputs = lineage.datasets(report)
        return OperatorLineage(inputs=inputs, outputs=outputs)  # type: ignore[arg-type]

    def extract_on_failure(self, task_instance) -> OperatorLineage | None:
        return self.extract_on_complete(task_instance)
