"""The source tree's structure (doc/ARCHITECTURE.md): no include circle
between modules (a .c and its .h are one module), and no source file in
worker/, common/, api/, controller/ or cli/ grows past the size one head can
hold without a word in the architecture document."""
import os
import re
import subprocess

from helpers import REPO

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# Files allowed over the limit, each one concern (see doc/ARCHITECTURE.md).
LONG_OK = {"common/jobspec_yaml.c"}
LINE_LIMIT = 1100


def _sources():
    out = subprocess.run(["git", "ls-files", "*.c", "*.h"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.split()
    return [f for f in out if not f.startswith("tests/")]


def _module(path):
    return re.sub(r"\.[ch]$", "", path)


def _graph():
    files = _sources()
    by_name = {}
    for f in files:
        by_name.setdefault(os.path.basename(f), []).append(f)
    graph = {}
    for f in files:
        text = (REPO / f).read_text(errors="replace")
        for inc in INCLUDE.findall(text):
            for target in by_name.get(os.path.basename(inc), []):
                if _module(target) != _module(f):
                    graph.setdefault(_module(f), set()).add(_module(target))
    return graph


def _cycles(graph):
    color, stack, found = {}, [], []

    def visit(u):
        color[u] = 1
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if color.get(v, 0) == 0:
                visit(v)
            elif color.get(v) == 1:
                found.append(stack[stack.index(v):] + [v])
        stack.pop()
        color[u] = 2

    for u in sorted(graph):
        if color.get(u, 0) == 0:
            visit(u)
    return found


def test_cycle_finder_finds_a_cycle():
    # The check itself must be able to fail.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": {"c"}}) == []


def test_no_include_circle():
    cycles = _cycles(_graph())
    assert not cycles, "include circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_overlong_file():
    long = []
    for f in _sources():
        if f.split("/")[0] in ("worker", "common", "api", "controller", "cli") and f not in LONG_OK:
            n = sum(1 for _ in open(REPO / f, errors="replace"))
            if n > LINE_LIMIT:
                long.append(f"{f}: {n} lines")
    assert not long, "split these or say in doc/ARCHITECTURE.md why each is one concern: " + ", ".join(long)
