"""The code's layers point one way: pipeline -> transforms -> core, models -> core, and nothing
back (transforms may use models; models and core know no graph and no CLI). A first-party import
inside a function says, in a `# lazy:` comment on its line, which cycle or cost it avoids."""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# layer -> the layers it may import from
ALLOWED = {
    "core": {"core"},
    "models": {"models", "core"},
    "transforms": {"transforms", "models", "core"},
    "pipeline": {"pipeline", "transforms", "models", "core"},
}


def modules():
    for layer in ALLOWED:
        for folder, _dirs, files in os.walk(os.path.join(ROOT, layer)):
            if "training" in folder.split(os.sep) or "__pycache__" in folder:
                continue  # models/training: offline scripts that build the shipped files, not the package
            for f in sorted(files):
                if f.endswith(".py"):
                    yield layer, os.path.join(folder, f)


def first_party_imports(path):
    """(target layer or None for the package root, line number, inside a function) per import."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node

    def in_function(node):
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return True
        return False

    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names] if node.module == "collapseguard" else [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] != "collapseguard":
                continue
            layer = parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None
            yield layer, node.lineno, in_function(node)


def test_the_layers_exist():
    found = {layer for layer, _ in modules()}
    assert found == set(ALLOWED)


@pytest.mark.parametrize("layer, path", list(modules()), ids=lambda x: os.path.relpath(x, ROOT) if isinstance(x, str) and os.sep in x else x)
def test_imports_point_one_way(layer, path):
    lines = open(path, encoding="utf-8").read().splitlines()
    for target, lineno, inside in first_party_imports(path):
        if target is not None:
            assert target in ALLOWED[layer], f"{os.path.relpath(path, ROOT)}:{lineno}: {layer} imports {target}"
        if inside:
            assert "# lazy:" in lines[lineno - 1], (
                f"{os.path.relpath(path, ROOT)}:{lineno}: a first-party import inside a function needs a "
                f"'# lazy: <the cycle or cost it avoids>' comment")


def test_the_checker_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from collapseguard.pipeline.config import Config\n\ndef f():\n    from collapseguard.core import schema\n")
    found = list(first_party_imports(str(bad)))
    assert ("pipeline", 1, False) in found and ("core", 4, True) in found
