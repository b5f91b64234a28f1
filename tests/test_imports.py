"""The package's import graph has no cycle (imports inside functions counted too), and the
serving code imports no training code."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def graph() -> dict[str, set[str]]:
    modules = {
        module_name(p): p for pkg in ("ticketml", "pyfunc") for p in (ROOT / pkg).rglob("*.py")
    }
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(
                        package.split(".")[: len(package.split(".")) - node.level + 1]
                        + ([base] if base else [])
                    )
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if (
                    target
                    and target != name
                    and not name.startswith(target + ".")
                    and target not in ("ticketml", "pyfunc")
                ):
                    edges[name].add(target)
    return edges


def test_no_import_cycle():
    edges, seen, stack = graph(), set(), []

    def visit(node):
        if node in stack:
            raise AssertionError(
                "import cycle: " + " -> ".join(stack[stack.index(node) :] + [node])
            )
        if node in seen:
            return
        stack.append(node)
        for nxt in sorted(edges[node]):
            visit(nxt)
        stack.pop()
        seen.add(node)

    for node in sorted(edges):
        visit(node)


def test_serving_code_imports_no_training_code():
    edges = graph()
    for module in ("pyfunc.core", "pyfunc.model", "pyfunc.tfidf", "pyfunc.text"):
        assert not {e for e in edges[module] if e.startswith("ticketml")}, module
