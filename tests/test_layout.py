"""The code's shape: stage folders in data-flow order, imports only pointing down, small files."""

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "pipeline"
# Lower stages first; a module may import its own stage and the ones below it.
STAGES = {
    "config": 0,
    "metrics": 0,
    "files": 0,
    "process": 0,
    "data": 1,
    "models": 2,
    "experiments": 3,
    "inference": 4,
    "annotate": 5,  # suggest reads with the inference classifier; simulate trains as experiments do
    "cli": 6,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:  # the package itself: an empty __init__, imported for its folder (MLflow code_paths)
        return 0
    return STAGES.get(parts[1], STAGES["cli"])  # __main__ and cli sit on top


def imports() -> dict[str, set[str]]:
    """Every pipeline module -> the pipeline modules it imports (at any depth: lazy imports count)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
                for alias in node.names:  # "from pipeline.models import registry" imports a module
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("pipeline")}
        graph[name] = {m for m in found if m != name and m in modules}
    return graph


def test_imports_point_down_the_stages():
    upward = [
        f"{mod} (stage {stage(mod)}) imports {dep} (stage {stage(dep)})"
        for mod, deps in imports().items()
        for dep in deps
        if stage(dep) > stage(mod) and not dep.endswith("__init__")
    ]
    assert upward == []


def test_no_import_cycles():
    graph = imports()
    # A package's __init__ re-exporting its own modules is not a cycle between modules.
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join([*path[path.index(dep) :], dep]))
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_stage_folders_exist_in_data_flow_order():
    folders = [p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()]
    assert sorted(folders, key=STAGES.get) == ["config", "data", "models", "experiments", "inference", "annotate"]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path):
    source = path.read_text(encoding="utf-8")
    assert len(source.splitlines()) <= 400
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60
    ]
    assert long == []


def test_no_backend_name_outside_the_model_layer():
    backends = ("majority", "tfidf", "transformer", "zeroshot")
    leaks = []
    for path in PACKAGE.rglob("*.py"):
        if stage(module_name(path)) == STAGES["models"] or path.parent.name == "config":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and any(
                isinstance(c, ast.Constant) and c.value in backends for c in node.comparators
            ):
                leaks.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert leaks == []
