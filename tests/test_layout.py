"""The package's layout rules (issue 27), read from the source so that they cannot drift:
no import cycles, only the store writes into a data repo, no module over 400 lines and no
function over 60 outside declarative tables."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "migrate"

# Writers outside migrate/store, each for a reason: git's merge-driver protocol hands the
# driver the file to write (and `--install` edits .gitattributes); `schemas --write` and
# `--output` write where the user says, not into a data repo; the demo removes its temp copy.
WRITERS_ALLOWED = {"merge.py", "schemas.py", "cli/common.py", "demo.py"}
WRITE_CALLS = {"write_text", "write_bytes", "unlink", "rmtree", "rename", "mkdir", "touch"}
# argparse registration tables: one add_argument after the other.
LONG_ALLOWED = {"register_up_down", "register_check"}


def _modules() -> dict[str, ast.Module]:
    return {
        p.relative_to(PACKAGE).as_posix(): ast.parse(p.read_text(encoding="utf-8"))
        for p in sorted(PACKAGE.rglob("*.py"))
    }


def _name(rel: str) -> str:
    parts = ["migrate", *rel[: -len(".py")].split("/")]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_at_load(rel: str, tree: ast.Module, known: set[str]) -> set[str]:
    """Modules of the package imported when ``rel`` is loaded (not inside functions, not
    under ``if TYPE_CHECKING``); ``from migrate.x import y`` counts ``migrate.x.y`` when y
    is a module."""
    me = _name(rel)
    package = me if rel.endswith("__init__.py") else me.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in out if m in known and m != me}


def test_no_import_cycles_between_the_package_modules():
    trees = _modules()
    known = {_name(rel) for rel in trees}
    graph = {
        _name(rel): {
            # A package's __init__ loading its own submodules is how packages load.
            m
            for m in _imports_at_load(rel, tree, known)
            if not (rel.endswith("__init__.py") and m.startswith(_name(rel) + "."))
        }
        for rel, tree in trees.items()
    }
    assert graph["migrate.engine.forward"], "the import graph reader found no edges"
    cycles = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycles.append(path[path.index(node) :] + [node])
            return
        if node in done:
            return
        for child in sorted(graph[node]):
            visit(child, [*path, node])
        done.add(node)

    for m in sorted(graph):
        visit(m, [])
    assert cycles == []


def test_only_the_store_writes_into_a_data_repo():
    offenders = []
    for rel, tree in _modules().items():
        if rel.startswith("store/") or rel in WRITERS_ALLOWED:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in WRITE_CALLS
                and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "store")
            ):
                offenders.append(f"{rel}:{node.lineno} .{node.func.attr}()")
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "replace"
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                offenders.append(f"{rel}:{node.lineno} os.replace")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                mode = node.args[1] if len(node.args) > 1 else None
                if isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in "wax+"):
                    offenders.append(f"{rel}:{node.lineno} open(..., {mode.value!r})")
    assert offenders == []


def test_modules_and_functions_stay_small():
    too_long = []
    for rel, tree in _modules().items():
        lines = (PACKAGE / rel).read_text(encoding="utf-8").count("\n")
        if lines > 400:
            too_long.append(f"{rel}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = node.end_lineno - node.lineno + 1
                if size > 60 and node.name not in LONG_ALLOWED:
                    too_long.append(f"{rel}: {node.name} {size} lines")
    assert too_long == []
