"""The tooling bar is part of the test suite: ruff (broad rule set) and mypy --strict must pass, and no module
or function grows past what one reads whole (#19: no module over 500 lines, no function over 80)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "floodwitness"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80  # end_lineno - lineno + 1 of the def (decorators not counted), methods and nested ones too

#: What still exceeds, each with why; an entry must go as soon as its module or function fits (a stale entry
#: fails too), and nothing is added here to let a new long function in. Keys: module paths under src/, and
#: "path:function" for functions.
SIZE_ALLOWED: dict[str, str] = {
}


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed next to {sys.executable}: install the test extra (.[test])")
    return found


def test_ruff_clean() -> None:
    result = subprocess.run([_tool("ruff"), "check", "src", "tests", "benchmarks"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_clean() -> None:
    result = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _oversized(package: Path = PACKAGE) -> dict[str, int]:
    """Modules over MAX_MODULE_LINES and functions over MAX_FUNCTION_LINES, with their lengths."""
    found: dict[str, int] = {}
    for path in sorted(package.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(package.parent).as_posix()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            found[name] = len(text.splitlines())
        for node in ast.walk(ast.parse(text, filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found[f"{name}:{node.name}"] = length
    return found


def test_no_module_over_500_lines_and_no_function_over_80() -> None:
    found = _oversized()
    over = {k: v for k, v in found.items() if k not in SIZE_ALLOWED}
    assert not over, (f"split these (modules: at most {MAX_MODULE_LINES} lines, functions: at most "
                      f"{MAX_FUNCTION_LINES}): " + ", ".join(f"{k} ({v} lines)" for k, v in over.items()))
    stale = sorted(set(SIZE_ALLOWED) - set(found))
    assert not stale, f"these fit now: remove them from SIZE_ALLOWED in tests/test_quality.py: {stale}"


def test_the_size_check_sees_long_modules_and_functions(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    # def line + body: exactly the limit, then one line more (a method); the long module is padded with blank lines
    fits = ["def fits():"] + [f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES - 1)]
    long = ["class C:", "    def long(self):"] + [f"        x{i} = {i}" for i in range(MAX_FUNCTION_LINES)]
    (package / "sub" / "fits.py").write_text("\n".join(fits) + "\n")
    (package / "sub" / "long.py").write_text("\n".join(long) + "\n" * (MAX_MODULE_LINES - len(long) + 2))
    assert _oversized(package) == {"pkg/sub/long.py": MAX_MODULE_LINES + 1,
                                   "pkg/sub/long.py:long": MAX_FUNCTION_LINES + 1}
