#!/usr/bin/env python3
"""The code's shape, measured: long files, long functions and import circles.

    python3 scripts/shape.py [--check | --self-test]

Reads every `src/**/*.rs` of the workspace's crates (the `tests/` directories and
`#[cfg(test)]` modules are left out) and prints:

- files over MAX_FILE_LINES lines;
- functions over MAX_FN_LINES lines (from the `fn` line to its closing brace);
- circles of imports: sets of files of one crate that reach each other through
  `use crate::…`, `super::…` or `self::…` paths (a `mod x;` declaration is
  structure, not an import; a `pub use x::Y` is an import).

With `--check` it exits 1 when any of them is found; `scripts/test.sh` runs it so, after
`--self-test`, which shows each check firing on a small tree made to break it.
Standard library only: it runs on any python3.
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = [
    "domain",
    "infra",
    "inventory-partitioner",
    "notifier",
    "checkout-worker",
    "api",
    "bench",
    "testkit",
]
MAX_FILE_LINES = 500
MAX_FN_LINES = 80


def blank(text):
    """The text with comments, strings and char literals replaced by spaces
    (newlines kept), so braces and paths inside them are not counted."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif re.match(r'(b?r)(#*)"', text[i:i + 40]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'(b?r)(#*)"', text[i:i + 40])
            close = '"' + m.group(2)
            j = text.find(close, i + len(m.group(0)))
            j = n if j < 0 else j + len(close)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'\n])'", text[i:i + 12])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching(text, open_at):
    """Index of the brace that closes the one at open_at."""
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(text) - 1


def without_tests(code):
    """Blanks `#[cfg(test)]` items (a module or a function) out of blanked code."""
    while True:
        m = re.search(r"#\[cfg\(test\)\]", code)
        if not m:
            return code
        brace = code.find("{", m.end())
        semi = code.find(";", m.end())
        end = semi if semi >= 0 and (brace < 0 or semi < brace) else matching(code, brace)
        code = code[: m.start()] + re.sub(r"[^\n]", " ", code[m.start(): end + 1]) + code[end + 1:]


def sources(root, crates):
    for crate in crates:
        src = os.path.join(root, crate, "src")
        has_lib = os.path.exists(os.path.join(src, "lib.rs"))
        for base, _, names in os.walk(src):
            for name in sorted(names):
                # A binary beside a library is a crate of its own that uses the library by name.
                if has_lib and base == src and name == "main.rs":
                    continue
                if name.endswith(".rs"):
                    path = os.path.join(base, name)
                    yield crate, src, path


def module_path(src, path):
    """The module path of a file: src/a/mod.rs and src/a.rs are ["a"]; lib.rs and main.rs []."""
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel


def long_functions(code, rel):
    for m in re.finditer(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)", code):
        # The body's brace: the first `{` after the signature, unless a `;` comes first (a trait item).
        j = m.end()
        depth = 0
        while j < len(code):
            ch = code[j]
            if ch in "(<[":
                depth += 1
            elif ch in ")>]":
                depth -= 1
            elif ch == ";" and depth <= 0:
                j = -1
                break
            elif ch == "{" and depth <= 0:
                break
            j += 1
        if j < 0 or j >= len(code):
            continue
        end = matching(code, j)
        first = code.count("\n", 0, m.start()) + 1
        last = code.count("\n", 0, end) + 1
        lines = last - first + 1
        if lines > MAX_FN_LINES:
            yield rel, first, m.group(1), lines


def imports(code, me, modules):
    """The files (module paths) of the crate this file's code names."""
    found = set()
    # Expand `use a::{b, c::{d}}` groups into paths by reading each use item whole.
    for m in re.finditer(r"\b(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", code):
        for path in expand(m.group(1)):
            target = resolve(path, me, modules)
            if target is not None:
                found.add(target)
    for m in re.finditer(r"(?<![A-Za-z0-9_:])([a-z_][A-Za-z0-9_]*(?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)+)", code):
        path = [p.strip() for p in m.group(1).split("::")]
        target = resolve(path, me, modules)
        if target is not None:
            found.add(target)
    found.discard(tuple(me))
    return found


def expand(tree):
    tree = re.sub(r"\s+", "", tree)
    tree = re.sub(r"\bas[A-Za-z_0-9]+", "", tree)
    out = []

    def walk(prefix, s):
        if s.endswith("}") and "{" in s:
            head, body = s.split("{", 1)
            body = body[:-1]
            head = [p for p in head.split("::") if p]
            parts, depth, cur = [], 0, ""
            for ch in body:
                if ch == "," and depth == 0:
                    parts.append(cur)
                    cur = ""
                    continue
                depth += ch == "{"
                depth -= ch == "}"
                cur += ch
            parts.append(cur)
            for part in parts:
                if part:
                    walk(prefix + head, part)
        else:
            out.append(prefix + [p for p in s.split("::") if p])

    walk([], tree)
    return out


def resolve(path, me, modules):
    if not path:
        return None
    if path[0] == "crate":
        base, rest = [], path[1:]
    elif path[0] in ("super", "self"):
        base, rest = list(me), path
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    else:
        # A path from this file's own child module (`mod queue;` then `queue::Queue`).
        if tuple(me + path[:1]) not in modules:
            return None
        base, rest = list(me), path
    full = base + rest
    # The longest prefix that is a file of this crate.
    for k in range(len(full), -1, -1):
        if tuple(full[:k]) in modules:
            return tuple(full[:k])
    return None


def circles(graph):
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
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


def measure(root, crates):
    """(long files, long functions, circles, every file) of the crates under root."""
    long_files, long_fns, graphs = [], [], {}
    files = list(sources(root, crates))
    modules = {}
    for crate, src, path in files:
        modules.setdefault(crate, set()).add(tuple(module_path(src, path)))
    for crate, src, path in files:
        rel = os.path.relpath(path, root)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        lines = text.count("\n")
        if lines > MAX_FILE_LINES:
            long_files.append((lines, rel))
        code = without_tests(blank(text))
        long_fns.extend(long_functions(code, rel))
        me = module_path(src, path)
        graphs.setdefault(crate, {})[tuple(me)] = imports(code, me, modules[crate])
    loops = [(crate, comp) for crate, graph in graphs.items() for comp in circles(graph)]
    return long_files, long_fns, loops, files


def self_test():
    """Each check fires on a tree made to break it, and stays quiet on test code."""
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        src = os.path.join(root, "bad", "src")
        os.makedirs(os.path.join(src, "a"))
        body = "\n".join(f"    let x{i} = {i};" for i in range(MAX_FN_LINES))
        files = {
            "lib.rs": "mod a;\nmod b;\npub use b::B;\n",
            "a/mod.rs": "mod child;\npub struct A;\npub fn long() {\n" + body + "\n}\n",
            # A child that reaches up into its parent, which uses it: a circle.
            "a/child.rs": "use super::A;\npub fn f(_: A) { let _ = \"}{\"; }\n",
            "b.rs": "pub struct B;\nfn g() { crate::a::child::f(crate::a::A); }\n"
            + "#[cfg(test)]\nmod tests {\n" + "\n" * (MAX_FILE_LINES + 5) + "}\n",
        }
        files["a/mod.rs"] += "fn h() { child::f(A); }\n"
        for name, text in files.items():
            with open(os.path.join(src, name), "w", encoding="utf-8") as f:
                f.write(text)
        long_files, long_fns, loops, _ = measure(root, ["bad"])
        assert [os.path.basename(p) for _, p in long_files] == ["b.rs"], long_files
        assert [name for _, _, name, _ in long_fns] == ["long"], long_fns
        assert loops == [("bad", [("a",), ("a", "child")])], loops
    print("shape.py self-test: a long file, a long function and a circle were each found")


def main():
    if "--self-test" in sys.argv[1:]:
        self_test()
        return
    check = "--check" in sys.argv[1:]
    long_files, long_fns, loops, files = measure(ROOT, CRATES)
    print(f"files over {MAX_FILE_LINES} lines: {len(long_files)}")
    for lines, rel in sorted(long_files, reverse=True):
        print(f"  {lines:5} {rel}")
    print(f"functions over {MAX_FN_LINES} lines: {len(long_fns)}")
    for rel, line, name, lines in sorted(long_fns, key=lambda x: -x[3]):
        print(f"  {lines:5} {rel}:{line} {name}")
    print(f"import circles: {len(loops)}")
    for crate, comp in loops:
        names = ["::".join(m) or "(root)" for m in comp]
        print(f"  {crate}: {len(comp)} files: {', '.join(names)}")
    largest = max((text_lines(p), os.path.relpath(p, ROOT)) for _, _, p in files)
    print(f"largest file: {largest[0]} lines ({largest[1]}); {len(files)} files")
    if check and (long_files or long_fns or loops):
        sys.exit(1)


def text_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().count("\n")


if __name__ == "__main__":
    main()
