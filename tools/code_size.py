"""Module and function sizes of the project's code: every module over the line limit and every
function over the function limit (from its ``def`` to its last line, decorators aside), outside
tests. Exit status 1 when any is over.

    python tools/code_size.py [--module-lines 300] [--function-lines 60]
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("recsys", "shell", "registry", "training", "inference", "serving", "commands", "benchmarks", "tools")


def python_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1  # from def to its end


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module-lines", type=int, default=300)
    parser.add_argument("--function-lines", type=int, default=60)
    args = parser.parse_args()
    files = python_files()
    long_modules, long_functions, n_functions, largest_module, largest_function = [], [], 0, 0, 0
    for path in files:
        text = path.read_text()
        lines = len(text.splitlines())
        largest_module = max(largest_module, lines)
        rel = path.relative_to(ROOT)
        if lines > args.module_lines:
            long_modules.append(f"{rel}: {lines} lines")
        for name, lineno, length in functions(ast.parse(text)):
            n_functions += 1
            largest_function = max(largest_function, length)
            if length > args.function_lines:
                long_functions.append(f"{rel}:{lineno} {name}: {length} lines")
    print(
        f"{len(files)} modules (largest {largest_module} lines), {n_functions} functions "
        f"(largest {largest_function} lines)"
    )
    print(f"modules over {args.module_lines} lines: {len(long_modules)}")
    for line in long_modules:
        print(f"  {line}")
    print(f"functions over {args.function_lines} lines: {len(long_functions)}")
    for line in long_functions:
        print(f"  {line}")
    return 1 if long_modules or long_functions else 0


if __name__ == "__main__":
    sys.exit(main())
