#!/usr/bin/env python3
"""Checks the workspace's layout rules (docs/ARCHITECTURE.md, STYLE.md):

1. No import circle between modules: within every crate checked, sibling
   modules (the children of one parent, and the crate root's top-level
   modules) must not reach each other in a cycle. A reference counts for the
   sibling whose subtree holds the referring file and for the sibling whose
   subtree holds what it names (`crate::a::b`, `super::x`, `self::x`, also
   inside `use … {…}` groups). A parent and its own children are not
   siblings: a router naming its handlers, and the handlers using their
   parent's extractor, are one room.
2. No Rust source file over 700 lines outside tests/ (and the SQLite store),
   counting inline test modules.
3. Dependencies between the workspace's crates flow downward only
   (cli -> controller/agent/gateway -> client -> model, core).

Exits 1 and says what is wrong and where; prints one line per check when
all hold.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CYCLE_CRATES = ["controller", "agent", "core", "model", "client", "cli", "gateway"]
MAX_LINES = 700
LINE_EXEMPT = {"controller/src/store/sqlite.rs"}
# crate dir -> workspace crates it may depend on (normal dependencies).
ALLOWED_DEPS = {
    "core": set(),
    "model": set(),
    "client": {"model"},
    "agent": {"core", "model", "client"},
    "controller": {"core", "model"},
    "gateway": {"core"},
    "cli": {"core", "model", "client", "agent", "controller", "gateway"},
    "test-support": set(),
}


def module_of(src: Path, f: Path) -> tuple:
    rel = f.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts in (["lib"], ["main"]):
        return ()
    if parts[-1] == "mod":
        parts = parts[:-1]
    return tuple(parts)


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def expand_use_groups(text: str):
    """Yields every path written in `use` items, groups expanded."""
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        yield from expand(m.group(1).replace("\n", " ").strip())


def expand(tree: str):
    tree = tree.strip()
    if not tree:
        return
    brace = tree.find("{")
    if brace < 0:
        yield tree.split(" as ")[0].strip()
        return
    prefix = tree[:brace]
    inner = tree[brace + 1 : tree.rfind("}")]
    depth, start = 0, 0
    for i, c in enumerate(inner):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "," and depth == 0:
            yield from expand(prefix + inner[start:i])
            start = i + 1
    yield from expand(prefix + inner[start:])


def targets(mod: tuple, text: str):
    """Module paths (absolute, as tuples) this file's code names."""
    paths = set(expand_use_groups(text))
    body = re.sub(r"\buse\s+[^;]+;", "", text)
    paths.update(re.findall(r"\b(?:crate|super|self)(?:::\w+)+", body))
    for p in paths:
        segs = [s.strip() for s in p.split("::") if s.strip()]
        if not segs:
            continue
        if segs[0] == "crate":
            base, rest = (), segs[1:]
        elif segs[0] in ("super", "self"):
            base = mod
            rest = segs
            while rest and rest[0] in ("super", "self"):
                if rest[0] == "super":
                    base = base[:-1]
                rest = rest[1:]
        else:
            continue
        yield base + tuple(rest)


def resolve(modules: set, path: tuple) -> tuple:
    """The longest module prefix of `path`."""
    for n in range(len(path), -1, -1):
        if path[:n] in modules:
            return path[:n]
    return ()


def find_cycle(nodes, edges):
    color = {n: 0 for n in nodes}
    stack = []

    def visit(n):
        color[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if color[m] == 1:
                return stack[stack.index(m) :] + [m]
            if color[m] == 0:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        color[n] = 2
        return None

    for n in sorted(nodes):
        if color[n] == 0:
            c = visit(n)
            if c:
                return c
    return None


def check_cycles(crate: str, problems: list):
    src = ROOT / crate / "src"
    if not src.is_dir():
        return
    files = {module_of(src, f): f for f in src.rglob("*.rs")}
    modules = set(files)
    # parent -> sibling edges
    edges = {}
    for mod, f in files.items():
        text = strip_comments(f.read_text())
        for t in targets(mod, text):
            dst = resolve(modules, t)
            # The two modules' nearest common ancestor's children on each side.
            common = 0
            while common < min(len(mod), len(dst)) and mod[common] == dst[common]:
                common += 1
            if common == len(mod) or common == len(dst):
                continue  # one contains the other: parent and child
            parent = mod[:common]
            a, b = mod[: common + 1], dst[: common + 1]
            edges.setdefault(parent, {}).setdefault(a, set()).add(b)
            edges[parent].setdefault(("why", a, b), set()).add(f"{f.relative_to(ROOT)} names {'::'.join(t)}")
    for parent, g in edges.items():
        graph = {k: v for k, v in g.items() if k[0] != "why"}
        nodes = set(graph) | {m for v in graph.values() for m in v}
        cycle = find_cycle(nodes, graph)
        if cycle:
            names = " -> ".join("::".join(m) or "(root)" for m in cycle)
            why = []
            for a, b in zip(cycle, cycle[1:]):
                why.append(sorted(g[("why", a, b)])[0])
            problems.append(f"{crate}: import circle {names} ({'; '.join(why)})")


def check_lines(problems: list):
    for f in sorted(ROOT.glob("*/src/**/*.rs")) + sorted(ROOT.glob("*/examples/*.rs")):
        rel = f.relative_to(ROOT).as_posix()
        if rel.startswith(("tests/", "target/", "fuzz/")) or rel in LINE_EXEMPT:
            continue
        n = len(f.read_text().splitlines())
        if n > MAX_LINES:
            problems.append(f"{rel}: {n} lines (more than {MAX_LINES}): split it by concept")


def check_deps(problems: list):
    for crate, allowed in ALLOWED_DEPS.items():
        manifest = ROOT / crate / "Cargo.toml"
        if not manifest.exists():
            continue
        text = manifest.read_text()
        deps = text.split("[dependencies]", 1)[-1].split("\n[", 1)[0]
        used = set(re.findall(r"^pulih-(\w+)", deps, flags=re.M))
        for d in sorted(used - allowed):
            problems.append(f"{crate}/Cargo.toml: depends on pulih-{d}, which it may not (dependencies flow downward)")


def main():
    problems = []
    for crate in CYCLE_CRATES:
        check_cycles(crate, problems)
    check_lines(problems)
    check_deps(problems)
    if problems:
        print("layout check failed:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        sys.exit(1)
    print(f"layout: no import circle in {', '.join(CYCLE_CRATES)}")
    print(f"layout: no source file over {MAX_LINES} lines outside tests/ and {', '.join(sorted(LINE_EXEMPT))}")
    print("layout: crate dependencies flow downward")


if __name__ == "__main__":
    main()
