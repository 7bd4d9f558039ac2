#!/usr/bin/env python3
"""Checks two layout rules of the workspace's own sources (ARCHITECTURE.md):

1. no `.rs` file is over 500 lines;
2. no two modules of a crate import each other, directly or through others (the module graph,
   without the edges between a module and its own ancestors, has no cycle).

Prints each violation on one line and exits 1 if there is any."""
import os
import re
import sys

MAX_LINES = 500
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP = {"target", ".git", ".venv", ".node", "node_modules"}
USE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def rust_files():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP and not d.startswith("wt-")]
        for f in filenames:
            if f.endswith(".rs"):
                yield os.path.join(dirpath, f)


def crate_roots():
    """(crate source dir, root file) for every lib/bin root under a `src` directory."""
    for path in rust_files():
        d, f = os.path.split(path)
        if os.path.basename(d) == "src" and f in ("lib.rs", "main.rs"):
            yield d, path


def module_path(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("lib", "main", "mod"):
        rel = rel[:-1]
    return tuple(rel)


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def edges(src, files):
    mods = {module_path(src, f): f for f in files}
    graph = {m: set() for m in mods}
    for m, f in mods.items():
        text = strip_comments(open(f, encoding="utf-8").read())
        # `#[cfg(test)] mod tests;` and inline test modules may use anything of their parent.
        for kind, rest in USE.findall(text):
            parts = [p for p in rest.split("::") if p]
            if kind == "crate":
                base = ()
            elif kind == "self":
                base = m
            else:
                base = m[:-1]
                while parts and parts[0] == "super":
                    base, parts = base[:-1], parts[1:]
            target = base
            for p in parts:
                if target + (p,) in mods:
                    target = target + (p,)
                else:
                    break
            if target == m or target[: len(m)] == m or m[: len(target)] == target:
                continue  # itself, a descendant or an ancestor
            graph[m].add(target)
    return graph


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    bad = []
    for path in rust_files():
        with open(path, encoding="utf-8") as fh:
            n = sum(1 for _ in fh)
        if n > MAX_LINES:
            bad.append(f"{os.path.relpath(path, ROOT)}: {n} lines (limit {MAX_LINES})")
    for src in sorted({src for src, _root in crate_roots()}):
        files = [
            p for p in rust_files()
            if p.startswith(src + os.sep) and not p[len(src) + 1:].startswith("bin" + os.sep)
        ]
        for comp in cycles(edges(src, files)):
            names = ", ".join("::".join(m) or "(root)" for m in comp)
            bad.append(f"{os.path.relpath(src, ROOT)}: modules import each other: {names}")
    for line in bad:
        print(line)
    if bad:
        sys.exit(1)
    print("layout: every file within 500 lines, no module cycle")


if __name__ == "__main__":
    main()
