#!/usr/bin/env bash
# `make test-lowest`: the built wheel at the lowest versions its metadata allows, next to one Airflow.
#
#   tests/lowest/run.sh UV PYTHON WHEEL AIRFLOW_REQUIREMENT VENV
#
# A fresh venv gets the wheel with its `emulator` extra (what `carto-provider demo` needs; it includes
# the `bigquery` requirements), every Requires-Dist of the wheel (and of that extra) as a direct requirement resolved with `uv pip install --resolution lowest-direct`, and the given
# Airflow. Then, from a copy of the tests outside the repository (so nothing imports the source tree):
# every module of the package imports, the suites that matter pass, and `carto-provider demo` runs the
# examples installed with the wheel.
set -euo pipefail
uv=$1 python=$2 wheel=$(realpath "$3") airflow=$4 venv=$5
repo=$(pwd)
# What the lower bounds change: imports at parse time, the hook (connection, tokens, transport), the
# common.sql DB-API hook, and a real DAG run; the demo then runs the operators, sensors and triggers.
tests="${LOWEST_TESTS:-tests/operators/test_parse_time.py tests/hooks/test_hook.py tests/hooks/test_dbapi_hook.py \
tests/hooks/test_transport.py tests/integration/test_example_quickstart.py}"

rm -rf "$venv"
"$uv" venv --quiet --python "$python" "$venv"
venv=$(realpath "$venv")
# Requires-Dist of the wheel, for the core and the emulator extra, markers evaluated here.
"$python" - "$wheel" >"$venv/lowest.txt" <<'PY'
import email, sys, zipfile
from packaging.requirements import Requirement
with zipfile.ZipFile(sys.argv[1]) as whl:
    name = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
    metadata = email.message_from_bytes(whl.read(name))
for line in metadata.get_all("Requires-Dist"):
    req = Requirement(line)
    if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", "emulator")):
        req.marker = None
        print(req)
PY
echo "== lowest-direct install next to $airflow:"
"$uv" pip install --quiet --python "$venv/bin/python" --resolution lowest-direct \
    -r "$venv/lowest.txt" "$wheel[emulator]" "$airflow" "pytest==9.2.0" "pytest-timeout==2.4.0"
"$uv" pip list --python "$venv/bin/python" 2>/dev/null \
    | grep -Ei '^(apache-airflow|apache-airflow-providers-common-(compat|sql)|tenacity|filelock|pyyaml|httpx|fastapi|uvicorn|duckdb|sqlglot|requests|pandas|google-cloud-bigquery|google-auth) ' \
    | tee "$venv/tested-versions.txt"

work=$(mktemp -d)/x
mkdir -p "$work"
cp -r "$repo/tests" "$repo/benchmarks" "$repo/pyproject.toml" "$work/"
find "$work" -name __pycache__ -prune -exec rm -rf {} +
cd "$work"
echo "== every module imports (from $venv):"
"$venv/bin/python" - <<'PY'
import importlib, pkgutil, sys
import carto_provider
assert "/site-packages/" in carto_provider.__file__, carto_provider.__file__
names = [m.name for m in pkgutil.walk_packages(carto_provider.__path__, "carto_provider.")]
for name in names:
    importlib.import_module(name)
print(f"{len(names)} modules of carto_provider {carto_provider.__version__} import")
PY
echo "== $tests"
# shellcheck disable=SC2086
"$venv/bin/pytest" -q -p no:cacheprovider -m "not ui and not cluster" --durations=5 $tests
echo "== carto-provider demo (from $work)"
"$venv/bin/carto-provider" demo
