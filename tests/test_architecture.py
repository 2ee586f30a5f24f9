"""The house rules of CONTRIBUTING.md that a test can hold: the layers and their imports."""

from __future__ import annotations

import ast
import subprocess
import sys

from conftest import ROOT

PACKAGE = ROOT / "babynn_cli"


def _imports() -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports, at any depth of the file
    (TYPE_CHECKING blocks and function bodies included)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            found |= {t for t in targets if t in modules and t != name}
        # a package importing its own submodules (to register them) is not a circle
        graph[name] = {t for t in found if not t.startswith(name + ".")}
    return graph


def test_no_import_circle_inside_the_package():
    graph = _imports()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    circles = [m for m in graph if reaches(m, m, {m})]
    assert circles == []


def test_each_outside_library_is_imported_by_its_own_layer_only():
    owners = {"pandas": "babynn_cli.data", "rich": "babynn_cli.report", "typer": "babynn_cli.cli"}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                roots = {node.module.split(".")[0]}
            else:
                continue
            for library, owner in owners.items():
                if library in roots:
                    allowed = name in owner if isinstance(owner, set) else name.startswith(owner)
                    assert allowed, f"{name} imports {library}"


def test_the_core_imports_numpy_and_itself_only():
    core = {n for n in _imports() if n.startswith("babynn_cli.core")}
    graph = _imports()
    assert all(dep.startswith("babynn_cli.core") for n in core for dep in graph[n])
    code = (
        "import sys, babynn_cli.core.fit, babynn_cli.core.sweep, babynn_cli.core.compare; "
        "print(sorted(m for m in ('pandas', 'rich', 'typer', 'numba') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_update_rule_has_one_home():
    """W ← W − η∇L is written in one module of numpy, beside the other rules (momentum, Nesterov,
    Adam), and once more in the one compiled loop (babynn[fast], proven to give the same
    iterates); every other path names them."""
    homes = sorted(
        p.relative_to(ROOT).as_posix()
        for p in PACKAGE.rglob("*.py")
        if "w ← w − η∇L_w" in p.read_text() or "W ← W − η∇L_W" in p.read_text()
    )
    assert homes == ["babynn_cli/core/compiled.py", "babynn_cli/core/optimizers.py"]


def test_the_command_line_offers_the_cores_choices():
    from babynn_cli.cli.options import Activation, Init, ScheduleName
    from babynn_cli.core import mlp, schedules
    from babynn_cli.core.choices import ACTIVATIONS, INITIALISATIONS, SCHEDULE_NAMES, SCHEDULES

    assert [s.value for s in ScheduleName] == list(SCHEDULE_NAMES)
    assert [a.value for a in Activation] == list(ACTIVATIONS) == list(mlp.ACTIVATIONS)
    assert [i.value for i in Init] == list(INITIALISATIONS)
    for choice in SCHEDULES:  # each name builds its schedule, described by the declared formula
        schedule = schedules.make_schedule(choice.name, 0.5, total_updates=10)
        assert schedule.name == choice.name
        assert schedules.describe(schedule).startswith(f"{choice.name}: η(t) = ")
