"""Item 8: in the example DAGs, a value spliced into SQL text is a validated Param (pattern), so a
``dag_run.conf`` cannot rewrite the SQL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
HOSTILE = "carto-dw-ac-emulator.shared` ; DROP TABLE `x"


@pytest.mark.parametrize("dag_id", ["carto_daily_etl", "carto_lineage"])
def test_every_param_in_sql_text_is_validated_and_refuses_an_injection(example_dag, dag_id):
    dag = example_dag(dag_id)
    spliced = set()
    for task in dag.tasks:
        for field in ("sql", "destination", "procedure"):
            spliced |= set(re.findall(r"params\.(\w+)", str(getattr(task, field, "") or "")))
    assert spliced
    for name in spliced:
        param = dag.params.get_param(name)
        assert param.schema.get("pattern"), f"{dag_id}: params.{name} reaches SQL text without a pattern"
        with pytest.raises(Exception, match=r"does not match|Invalid input"):
            param.resolve(HOSTILE)
        param.resolve(param.value)  # the default is valid
