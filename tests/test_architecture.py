"""The layout's rules, checked on the source: layer imports, where the process may exit, function size."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "jaxseg"

# layer -> the jaxseg layers it may import (docs/architecture.md, "Allowed imports")
CORE = {"ops", "registry", "errors"}
ALLOWED = {
    "ops": CORE,
    "models": CORE | {"models"},
    "losses": CORE | {"losses"},
    "metrics": CORE | {"metrics"},
    "data": CORE | {"data"},
    "analysis": CORE | {"analysis", "losses"},
    "training": CORE | {"models", "losses", "metrics", "data", "training"},
    "inference": CORE | {"models", "losses", "metrics", "data", "training", "inference"},
    "reporting": CORE | {"models", "losses", "metrics", "data", "training", "inference", "reporting"},
    "exporting": CORE | {"models", "losses", "metrics", "data", "training", "inference", "exporting"},
}
TF_LAYERS = {"data", "exporting"}  # exporting: jax2tf SavedModels


def _modules():
    return sorted(p for p in ROOT.rglob("*.py"))


def _layer(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return rel.parts[0]


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            if node.module == "jaxseg":
                for a in node.names:
                    yield node.lineno, f"jaxseg.{a.name}"


@pytest.mark.parametrize("path", [p for p in _modules() if _layer(p) in ALLOWED], ids=lambda p: str(p.relative_to(ROOT)))
def test_layers_import_only_what_the_table_allows(path):
    layer = _layer(path)
    for line, name in _imports(path):
        parts = name.split(".")
        if parts[0] == "jaxseg" and len(parts) > 1:
            assert parts[1] in ALLOWED[layer], f"{path.relative_to(ROOT)}:{line} ({layer}) imports {name}"
        if parts[0] in ("tensorflow", "tensorflow_datasets"):
            assert layer in TF_LAYERS, f"{path.relative_to(ROOT)}:{line} imports {name} outside jaxseg/data"


def test_only_the_cli_exits_the_process():
    for path in _modules():
        if _layer(path) == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                assert getattr(target, "id", None) != "SystemExit", f"{path}:{node.lineno} raises SystemExit"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert not (node.func.attr == "exit" and getattr(node.func.value, "id", None) == "sys"), \
                    f"{path}:{node.lineno} calls sys.exit"


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 80:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, long


def test_no_project_file_points_outside_the_repository():
    repo = ROOT.parent
    files = [*repo.glob("jaxseg/**/*.py"), *repo.glob("tests/*.py"), *repo.glob("bench/*"), *repo.glob("docs/*"),
             *repo.glob("configs/*.py"), *repo.glob("launch/*"), repo / "README.md"]
    for f in files:
        if f.is_file() and f.name != Path(__file__).name:
            text = f.read_text(errors="ignore")
            # (the names are split so that this file does not match its own check)
            assert ("../" "shared") not in text and ("DESIGN" ".md") not in text, f


@pytest.mark.parametrize("script", ["jaxseg-train", "jaxseg-predict", "jaxseg-inspect", "jaxseg-report",
                                    "jaxseg-aggregate", "jaxseg-export"])
def test_console_scripts_are_installed_and_answer_help(script):
    exe = Path(sys.executable).parent / script
    if not exe.exists():
        pytest.skip(f"{script} not installed (the package was not pip-installed into this environment)")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode in (0, 1), out.stderr  # absl's --help exits 1 (its convention), argparse's 0
    assert "Traceback" not in out.stderr
    command = "jaxseg.main" if script == "jaxseg-train" else "jaxseg." + script.split("-")[1]
    assert f"python -m {command}" in out.stdout  # the command's own usage text
