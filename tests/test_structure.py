"""The package's structure: the layers, one import path per name, no import cycle (ARCHITECTURE.md).

Read from the source (imports at the top, inside functions and under ``if TYPE_CHECKING:`` all count),
and checked again by importing each Airflow-free module alone in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import carto_provider
from carto_provider.provider_info import provider_modules

PACKAGE = Path(carto_provider.__file__).parent
#: The Airflow-facing folders; every module in them is thin over the Airflow-free layers.
AIRFLOW_FACING = ("hooks", "operators", "sensors", "triggers")
#: What nothing below the Airflow line may reach.
ABOVE_THE_LINE = (
    "airflow",
    *(f"carto_provider.{folder}" for folder in AIRFLOW_FACING),
    "carto_provider.lineage",
    "carto_provider.assets",
)


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (``from m import x`` gives ``m`` and ``m.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _paths() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _module_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (every ``airflow...`` module as ``airflow``)."""
    paths = _paths()
    graph: dict[str, set[str]] = {"airflow": set()}
    for name, path in paths.items():
        imported = {"airflow" if m.split(".")[0] == "airflow" else m for m in _imports(path)}
        graph[name] = {m for m in imported if m in paths or m == "airflow"} - {name}
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def _below_the_line(name: str) -> bool:
    return not name.startswith(ABOVE_THE_LINE[1:]) and name not in ("carto_provider.testing.demo",)


def test_no_module_imports_itself_through_a_cycle() -> None:
    graph = _module_graph()
    assert len(graph) > 60
    cycles = [name for name in graph if name != "airflow" and name in _reachable(graph, name)]
    assert not cycles, f"import cycles through: {cycles}"


def test_nothing_below_the_airflow_line_reaches_airflow_or_the_airflow_facing_modules() -> None:
    graph = _module_graph()
    core = [n for n in graph if n.startswith(("carto_provider.api", "carto_provider.auth"))]
    core += ["carto_provider.errors", "carto_provider._hook_params", "carto_provider.provider_info"]
    assert "carto_provider.api.transport" in core and "carto_provider.auth.cache.policy" in core
    for name in core:
        reached = {m for m in _reachable(graph, name) if m.startswith(ABOVE_THE_LINE)}
        assert not reached, f"{name} reaches {sorted(reached)}"


def test_every_module_in_the_airflow_facing_folders_uses_airflow() -> None:
    graph = _module_graph()
    facing = [
        n for n in graph if n.split(".")[1:2] and n.split(".")[1] in AIRFLOW_FACING and n.count(".") == 2
    ]
    assert len(facing) >= 10
    airflow_free = [name for name in facing if "airflow" not in _reachable(graph, name)]
    assert not airflow_free, f"Airflow-free modules in {AIRFLOW_FACING}: {airflow_free}"


def test_provider_info_lists_exactly_the_airflow_facing_modules() -> None:
    tree = {
        kind: sorted(_module_name(p) for p in (PACKAGE / kind).glob("*.py") if not p.name.startswith("_"))
        for kind in AIRFLOW_FACING
    }
    assert provider_modules() == tree
    assert "carto_provider.hooks.imports" in tree["hooks"] and len(tree["operators"]) >= 4


def _top_level(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def test_no_alias_shim_or_re_export_outside_package_inits() -> None:
    problems = []
    for name, path in _paths().items():
        tree = _top_level(path)
        defined = {
            n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        } | {
            t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
        }
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
                problems.append(f"{name}: module __getattr__")
            if isinstance(node, ast.ImportFrom) and any(a.asname and a.asname == a.name for a in node.names):
                problems.append(f"{name}: 'X as X' re-export")
            if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
                problems.append(f"{name}: star import")
        if path.name == "__init__.py" or ".testing" in name:
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
                listed = set(ast.literal_eval(node.value))
                if listed - defined:
                    problems.append(f"{name}: __all__ re-exports {sorted(listed - defined)}")
        # A class-level alias of a method (``get_job = aget_job``) is a second name for one thing.
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            methods = {f.name for f in cls.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)}
            for stmt in cls.body:
                aliased = isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Name)
                if aliased and stmt.value.id in methods and stmt.targets[0].id != "get_conn":  # type: ignore[attr-defined]
                    problems.append(f"{name}.{cls.name}: alias {ast.unparse(stmt)}")
    assert not problems, "\n".join(problems)


def test_each_public_name_is_defined_once() -> None:
    """Public names: the package ``__init__``s' ``__all__`` and the classes provider_info registers."""
    defined: dict[str, list[str]] = {}
    for name, path in _paths().items():
        for node in _top_level(path).body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef):
                defined.setdefault(node.name, []).append(name)
    public = set()
    for path in PACKAGE.rglob("__init__.py"):
        for node in _top_level(path).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
                public |= set(ast.literal_eval(node.value)) - {"__version__"}
    for modules in provider_modules().values():
        for module in modules:
            path = _paths()[module]
            public |= {n.name for n in _top_level(path).body if isinstance(n, ast.ClassDef)}
    twice = {name: defined.get(name) for name in public if len(defined.get(name, [])) != 1}
    assert not twice, f"defined more (or less) than once: {twice}"


def test_each_airflow_free_module_imports_alone_without_airflow() -> None:
    """Each module in a fresh interpreter (an import cycle breaks some import orders, not all)."""
    modules = [n for n in _paths() if n.startswith(("carto_provider.api", "carto_provider.auth"))]
    modules += ["carto_provider.errors", "carto_provider.provider_info", "carto_provider._hook_params"]
    check = (
        "import importlib, sys\n"
        "for m in sys.argv[1:]:\n"
        "    for k in [k for k in sys.modules if k.startswith('carto_provider')]: del sys.modules[k]\n"
        "    importlib.import_module(m)\n"
        "    up = sorted(k for k in sys.modules if k.startswith(('airflow', 'carto_provider.hooks')))\n"
        "    if up: sys.exit(f'{m} loaded {up}')\n"
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", check, *modules[i::4]], stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    failures = [run.communicate(timeout=240)[1][-800:] for run in runs if run.wait()]
    assert not failures, "\n".join(failures)
