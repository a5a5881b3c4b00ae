"""The package's shape: subpackages in a layer order that no import goes against, and no import cycles.

Every import in fer_core/, dashboard/ and pages/ is parsed, at module level and inside functions, so a lazy
import cannot hide a cycle. A failure names the file and line.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Lowest first: a module may import from its own layer or below, never above.
LAYERS = [
    ["fer_core.errors", "fer_core.labels", "fer_core.paths", "fer_core.exports"],
    # the run folder is what training writes: its format sits below training and the jobs that manage runs
    ["fer_core.data", "fer_core.models", "fer_core.rundir"],
    ["fer_core.evaluation"],
    ["fer_core.training"],
    ["fer_core.runs"],
    ["fer_core.cards", "fer_core.tuning"],
    ["fer_core.inference"],
    ["fer_core", "fer_core.cli", "fer_core.__main__", "fer_core.bench"],
    ["dashboard"],
    ["pages"],
    ["benchmarks"],  # drive the dashboard from outside, as a browser does
]
TOP_LEVEL_MODULES = {"__init__.py", "__main__.py", "errors.py", "exports.py", "labels.py", "paths.py"}
SUBPACKAGES = ["data", "models", "rundir", "evaluation", "training", "runs", "cards", "tuning", "inference"]
# the one door between the UI and the library: each subpackage's __all__, and the shared top-level modules
SURFACE = {"fer_core.errors", "fer_core.labels", "fer_core.paths", *(f"fer_core.{p}" for p in SUBPACKAGES)}
UI = ["dashboard", "pages"]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, module: str) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            found.append((base, node.lineno))
            found += [(f"{base}.{a.name}", node.lineno) for a in node.names]  # `from pkg import module`
    return found


def module_graph(root: Path, packages: list[str]) -> tuple[dict[str, Path], dict[str, list[tuple[str, int]]]]:
    """The modules under `root`/<package> and, per module, the modules of that set it imports (with the line)."""
    files = {module_name(p, root): p for pkg in packages for p in (root / pkg).rglob("*.py")}
    edges = {}
    for module, path in files.items():
        edges[module] = [(target, line) for target, line in imports_of(path, module) if target in files
                         and target != module]
    return files, edges


def find_cycle(edges: dict[str, list[tuple[str, int]]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target, _ in edges.get(node, []):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None
    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def layer_of(module: str) -> int:
    best, rank = -1, None
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    if rank is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return rank


def upward_imports(files: dict[str, Path], edges) -> list[str]:
    problems = []
    for module, targets in edges.items():
        for target, line in targets:
            if layer_of(target) > layer_of(module):
                problems.append(f"{files[module].relative_to(REPO)}:{line}: {module} imports {target} from a higher layer")
    return problems


def two_way_imports(files: dict[str, Path], edges) -> list[str]:
    """Packages of one layer that import each other: within a layer, imports between packages go one way."""
    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])
    first: dict[tuple[str, str], str] = {}
    for module, targets in sorted(edges.items()):
        for target, line in targets:
            a, b = package(module), package(target)
            if a != b and layer_of(module) == layer_of(target):
                first.setdefault((a, b), f"{files[module].relative_to(REPO)}:{line}")
    return [f"{a} and {b} import each other ({first[(a, b)]}, {first[(b, a)]})"
            for a, b in sorted(first) if a < b and (b, a) in first]


def test_packages_of_one_layer_import_each_other_one_way_only():
    files, edges = module_graph(REPO, ["fer_core", "dashboard", "pages"])
    assert two_way_imports(files, edges) == []


def test_the_one_way_check_catches_two_packages_that_import_each_other(tmp_path, monkeypatch):
    for pkg, other in (("left", "right"), ("right", "left")):
        (tmp_path / "toy" / pkg).mkdir(parents=True)
        (tmp_path / "toy" / pkg / "__init__.py").write_text("")
        (tmp_path / "toy" / pkg / "a.py").write_text(f"from ..{other} import a\n")
    (tmp_path / "toy" / "__init__.py").write_text("")
    files, edges = module_graph(tmp_path, ["toy"])
    monkeypatch.setattr("tests.project.test_architecture.LAYERS", [["toy.left", "toy.right"], ["toy"]])
    monkeypatch.setattr("tests.project.test_architecture.REPO", tmp_path)
    assert two_way_imports(files, edges) == ["toy.left and toy.right import each other (toy/left/a.py:1, "
                                             "toy/right/a.py:1)"]


def test_no_import_cycles():
    _, edges = module_graph(REPO, ["fer_core", "dashboard", "pages", "benchmarks"])
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_import_goes_against_the_layer_order():
    files, edges = module_graph(REPO, ["fer_core", "dashboard", "pages", "benchmarks"])
    assert upward_imports(files, edges) == []


def test_the_library_never_imports_the_dashboard_or_streamlit():
    files, _ = module_graph(REPO, ["fer_core"])
    offending = [f"{path.relative_to(REPO)}:{line}: imports {target}" for module, path in files.items()
                 for target, line in imports_of(path, module)
                 if target.split(".")[0] in ("streamlit", "streamlit_webrtc", "dashboard", "pages", "benchmarks",
                                             "playwright")]
    assert offending == []


def test_the_package_top_level_holds_only_the_shared_modules():
    top = {p.name for p in (REPO / "fer_core").glob("*.py")}
    assert top <= TOP_LEVEL_MODULES, sorted(top - TOP_LEVEL_MODULES)


@pytest.fixture
def tiny_package(tmp_path):
    """A synthetic package: `low` and `high` in two layers, written by each test."""
    pkg = tmp_path / "toy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")

    def write(low: str, high: str) -> tuple[dict, dict]:
        (pkg / "low.py").write_text(low)
        (pkg / "high.py").write_text(high)
        return module_graph(tmp_path, ["toy"])
    return write


def test_the_checks_catch_a_cycle_even_through_an_import_inside_a_function(tiny_package):
    _, edges = tiny_package("def f():\n    from .high import g\n", "from .low import f\n")
    assert find_cycle(edges) == ["toy.high", "toy.low", "toy.high"]
    _, edges = tiny_package("x = 1\n", "from .low import x\n")
    assert find_cycle(edges) is None


def test_the_checks_catch_an_upward_import_and_name_its_line(tiny_package, monkeypatch):
    files, edges = tiny_package("import os\n\n\ndef f():\n    from toy.high import g\n", "from .low import f\n")
    monkeypatch.setattr("tests.project.test_architecture.LAYERS", [["toy.low"], ["toy", "toy.high"]])
    monkeypatch.setattr("tests.project.test_architecture.REPO", files["toy"].parents[1])
    assert upward_imports(files, edges) == ["toy/low.py:5: toy.low imports toy.high from a higher layer"]


def test_only_the_run_folder_names_a_run_file():
    """One owner of the run folder (rundir.folder.RunFolder): nobody else spells a run file's name."""
    from fer_core.rundir.folder import RunFolder
    names = {*RunFolder.RUN_FILES, RunFolder.LOG, RunFolder.LOCK}
    owner = REPO / "fer_core" / "rundir" / "folder.py"
    offending = []
    for folder in ("fer_core", "dashboard", "pages"):
        for path in (REPO / folder).rglob("*.py"):
            if path == owner:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in names:
                    offending.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert offending == []


def test_every_subpackage_is_placed_in_a_layer():
    """A new subpackage must be given its layer: it never falls silently into the top one."""
    listed = {m for layer in LAYERS for m in layer}
    found = {f"fer_core.{p.name}" for p in (REPO / "fer_core").iterdir() if (p / "__init__.py").is_file()}
    assert sorted(found - listed) == [], "add these subpackages to LAYERS (and to docs/architecture.md's table)"
    assert {f"fer_core.{p}" for p in SUBPACKAGES} <= found


def documented_layers(text: str) -> dict[int, set[str]]:
    """The packages per layer in docs/architecture.md's table (`data/` -> fer_core.data, `__init__` -> fer_core)."""
    layers: dict[int, set[str]] = {}
    for row in text.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            for name in cells[1].replace("`", "").split(","):
                name = name.strip().rstrip("/").replace("/", ".")
                module = name if name in (*UI, "benchmarks") else "fer_core" if name == "__init__" else f"fer_core.{name}"
                layers.setdefault(int(cells[0]), set()).add(module)
    return layers


def test_the_architecture_doc_shows_the_layers_this_test_keeps():
    documented = documented_layers((REPO / "docs" / "architecture.md").read_text())
    assert documented == {i: set(layer) for i, layer in enumerate(LAYERS)}


def surface_violations(paths: list[Path], root: Path = REPO) -> list[str]:
    """Imports from the library in `paths` that do not go through the surface, as 'file:line: what'."""
    import importlib
    problems = []
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        for node in sorted((n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))),
                           key=lambda n: n.lineno):
            if isinstance(node, ast.Import):
                wanted = [(a.name, None) for a in node.names if a.name.split(".")[0] == "fer_core"]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "fer_core" and not node.level:
                wanted = [(node.module, a.name) for a in node.names]
            else:
                continue
            for module, name in wanted:
                if module == "fer_core" and name is not None:
                    module, name = f"fer_core.{name}", None
                if module not in SURFACE:
                    problems.append(f"{path.relative_to(root)}:{node.lineno}: imports {module}: use the surface "
                                    f"(a subpackage's __all__, errors, labels or paths)")
                elif name is not None and name not in getattr(importlib.import_module(module), "__all__", [name]):
                    problems.append(f"{path.relative_to(root)}:{node.lineno}: imports {name} from {module}, which is "
                                    f"not in its __all__: add it there, or keep it inside the library")
    return problems


def ui_files() -> list[Path]:
    return sorted(p for folder in UI for p in (REPO / folder).rglob("*.py"))


def test_the_dashboard_and_pages_use_only_the_library_surface():
    assert surface_violations(ui_files()) == []
    used = {m for path in ui_files() for m, _ in imports_of(path, module_name(path, REPO))
            if m in SURFACE}
    assert len(used) <= 12, sorted(used)


def test_the_surface_check_catches_an_import_of_an_inner_module_or_name(tmp_path):
    page = tmp_path / "page.py"
    page.write_text("from fer_core.cards import Entry\n\n\ndef f():\n    from fer_core.cards.catalog import Entry\n"
                    "from fer_core.data import _private_thing\nimport fer_core.inference.recognizer\n"
                    "from fer_core import training\n")
    assert surface_violations([page], tmp_path) == [
        "page.py:5: imports fer_core.cards.catalog: use the surface (a subpackage's __all__, errors, labels or paths)",
        "page.py:6: imports _private_thing from fer_core.data, which is not in its __all__: add it there, or keep "
        "it inside the library",
        "page.py:7: imports fer_core.inference.recognizer: use the surface (a subpackage's __all__, errors, labels or "
        "paths)"]


def test_the_surface_holds_only_what_the_ui_uses():
    """The surface stays small: a name no page or dashboard module imports any more leaves __all__."""
    import importlib
    used = {(node.module, a.name) for path in ui_files() for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module for a in node.names}
    unused = [f"fer_core.{p}.{name}" for p in SUBPACKAGES
              for name in importlib.import_module(f"fer_core.{p}").__all__ if (f"fer_core.{p}", name) not in used]
    assert unused == []


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_every_surface_name_resolves(package):
    import importlib
    module = importlib.import_module(f"fer_core.{package}")
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


# the modules that parse JSON that is not a model card, each with what it reads
JSON_READERS = {
    "fer_core/paths.py": "read_json_object itself, the one checked reader",
    "fer_core/inference/engines.py": "the remembered engine choices",
    "fer_core/data/leakage.py": "the cached ids of leaked test images",
    "fer_core/data/cache.py": "the decoded dataset's description",
    "fer_core/rundir/folder.py": "the run folder's files",
    "fer_core/runs/index.py": "a run's config in the SQLite index",
    "fer_core/runs/worker.py": "a queued run's config",
    "fer_core/cards/catalog.py": "a run's config in the SQLite index",
    "dashboard/live/page.py": "the user's ICE servers",
}


def test_only_the_card_type_parses_a_model_card():
    """models/card.py's ModelCard reads every card; no other module opens JSON itself unless it is listed above."""
    offending = []
    for folder in ("fer_core", "dashboard", "pages"):
        for path in (REPO / folder).rglob("*.py"):
            rel = str(path.relative_to(REPO))
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                name = ast.unparse(node.func)
                if name == "read_json_object" and rel != "fer_core/models/card.py" or (
                        name in ("json.loads", "json.load") and rel not in JSON_READERS):
                    offending.append(f"{rel}:{node.lineno}: {name}")
    assert offending == [], "read cards with fer_core.models.card.ModelCard"


def test_the_tests_mirror_the_rooms():
    """tests/<subpackage>/ for the library's rooms, tests/dashboard/ for the pages, tests/e2e/ for the browser and
    the real dataset, tests/cli/ and tests/project/ for the commands and the tree as a whole; no test at the top."""
    tests = REPO / "tests"
    rooms = {p.name for p in tests.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    assert rooms <= {*SUBPACKAGES, "cli", "dashboard", "e2e", "project"}, sorted(rooms)
    assert sorted(p.name for p in tests.glob("test_*.py")) == []


PAGES = ["dataset", "train", "compare", "predict", "live"]


def room_violations(root: Path = REPO) -> list[str]:
    """The UI's rooms: pages/<page>.py is a thin script that runs dashboard/<page>/page.py's render(); a room
    imports from dashboard/ only itself and dashboard/shared/; shared imports no room."""
    problems = []
    for page in sorted((root / "pages").glob("*.py")):
        tree = ast.parse(page.read_text())
        imported = {m for m, _ in imports_of(page, module_name(page, root)) if m.split(".")[0] == "dashboard"}
        statements = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        if imported - {f"dashboard.{page.stem}.page", f"dashboard.{page.stem}.page.render"} or len(statements) > 3:
            problems.append(f"pages/{page.name}: a page is `from dashboard.{page.stem}.page import render; render()`")
        if not (root / "dashboard" / page.stem / "page.py").is_file():
            problems.append(f"pages/{page.name} has no room: dashboard/{page.stem}/page.py")
    for path in sorted((root / "dashboard").rglob("*.py")):
        parts = path.relative_to(root / "dashboard").parts
        room = parts[0] if len(parts) > 1 else None  # Home.py and dashboard/__init__.py sit above the rooms
        for target, line in imports_of(path, module_name(path, root)):
            other = target.split(".")[1] if target.startswith("dashboard.") else None
            if other and room and other not in (room, "shared") and not target.startswith("dashboard.__"):
                problems.append(f"dashboard/{'/'.join(parts)}:{line}: the {room} room imports {target}: move what both "
                                f"rooms use to dashboard/shared/")
    return problems


def test_each_page_is_a_thin_script_over_its_room():
    assert room_violations() == []


def test_the_room_check_catches_a_fat_page_and_a_room_reaching_into_another(tmp_path):
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "alpha.py").write_text("import streamlit as st\nst.title('x')\nst.write(1)\nst.write(2)\n"
                                                 "from dashboard.alpha.page import render\nrender()\n")
    for room in ("alpha", "beta", "shared"):
        (tmp_path / "dashboard" / room).mkdir(parents=True)
        (tmp_path / "dashboard" / room / "__init__.py").write_text("")
    (tmp_path / "dashboard" / "__init__.py").write_text("")
    (tmp_path / "dashboard" / "alpha" / "page.py").write_text("from dashboard.beta.views import chart\n")
    assert room_violations(tmp_path) == [
        "pages/alpha.py: a page is `from dashboard.alpha.page import render; render()`",
        "dashboard/alpha/page.py:1: the alpha room imports dashboard.beta.views: move what both rooms use to "
        "dashboard/shared/",
        "dashboard/alpha/page.py:1: the alpha room imports dashboard.beta.views.chart: move what both rooms use to "
        "dashboard/shared/"]
