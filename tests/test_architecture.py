"""The package's layer rules, checked on the source (an AST walk of every import).

cli -> pipelines -> {model, algo, viz} -> base -> io -> utils (errors: everyone).
``algo``, ``model`` and ``viz`` never import each other; nothing outside ``cli`` imports
it; a command imports no other command; a ``_private`` module is imported only from
inside its own package; there is no import cycle; ``import dnnsparse.algo`` and every
algo module leave torch out of ``sys.modules``.
"""
import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import dnnsparse

ROOT = Path(dnnsparse.__file__).parent
RANK = {"errors": 0, "utils": 0, "io": 1, "base": 2, "model": 3, "algo": 3, "viz": 3,
        "pipelines": 4, "cli": 5}
SIBLINGS = {"model", "algo", "viz"}
CLI_SHARED = {"dnnsparse.cli", "dnnsparse.cli._common", "dnnsparse.cli._args"}


def _module_name(path):
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_package(name):
    return MODULES[name].name == "__init__.py"


def _lazy_map(package):
    """The name -> module table of a package built with utils.lazy (else {})."""
    tree = ast.parse(MODULES[package].read_text())
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                and any(getattr(t, "id", None) == "_WHERE" for t in node.targets)):
            return {k.value: f"{package}.{v.value}" for k, v in zip(node.value.keys,
                                                                    node.value.values)}
    return {}


def _imports(name, *, resolve_lazy=True):
    """Every dnnsparse module ``name`` imports (module level and inside functions).

    With ``resolve_lazy``, a name taken from a lazily exporting package counts as an
    import of the module that defines it (what runs); without, of the package (what
    the code says).
    """
    path = MODULES[name]
    package = name if _is_package(name) else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("dnnsparse"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("dnnsparse"):
                continue
            lazy = (_lazy_map(target) if resolve_lazy and target in MODULES
                    and _is_package(target) else {})
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:
                    found.add(sub)
                elif alias.name in lazy:
                    found.add(lazy[alias.name])
                else:
                    found.add(target)
    found.discard(name)
    return {m for m in found if m in MODULES}


GRAPH = {name: _imports(name) for name in MODULES}
WRITTEN = {name: _imports(name, resolve_lazy=False) for name in MODULES}


def _layer(name):
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def _edges(graph=GRAPH):
    for src, targets in graph.items():
        for dst in sorted(targets):
            yield src, dst


def test_layers_import_only_downwards():
    bad = []
    for src, dst in _edges():
        a, b = _layer(src), _layer(dst)
        if a is None or b is None or a == b:
            continue
        if RANK[b] > RANK[a] or (a in SIBLINGS and b in SIBLINGS):
            bad.append(f"{src} -> {dst}")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_nothing_outside_cli_imports_cli():
    bad = [f"{s} -> {d}" for s, d in _edges() if _layer(d) == "cli" and _layer(s) != "cli"]
    assert not bad, "\n".join(bad)


def test_no_command_imports_another_command():
    bad = [f"{s} -> {d}" for s, d in _edges()
           if _layer(s) == "cli" and _layer(d) == "cli" and d not in CLI_SHARED]
    assert not bad, "\n".join(bad)


def test_private_modules_stay_inside_their_package():
    bad = []
    for src, dst in _edges(WRITTEN):
        leaf = dst.rpartition(".")[2]
        if leaf.startswith("_") and not _is_package(dst):
            owner = dst.rpartition(".")[0]
            if not (src == owner or src.startswith(owner + ".")):
                bad.append(f"{src} -> {dst}")
    assert not bad, "private modules imported from outside their package:\n" + "\n".join(bad)


def test_no_import_cycle():
    # Tarjan's strongly connected components over the module graph
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_every_package_states_its_api():
    for name, path in MODULES.items():
        if not _is_package(name) or name == "dnnsparse":
            continue
        module = importlib.import_module(name)
        assert isinstance(getattr(module, "__all__", None), (list, tuple)), name
        for public in module.__all__:
            assert hasattr(module, public), f"{name}.__all__ names {public!r}, not there"


ALGO = sorted(m.name for m in pkgutil.walk_packages(
    [str(ROOT / "algo")], "dnnsparse.algo.")) + ["dnnsparse.algo"]


def test_algo_does_not_import_torch():
    code = ("import importlib, sys\n"
            f"for m in {ALGO!r}:\n"
            "    importlib.import_module(m)\n"
            "print('torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False", done.stderr
