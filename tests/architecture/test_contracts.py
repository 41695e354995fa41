"""The house rules as tests: import contracts, private names, lint and format.

`python3 manage.py test` fails when an arrow points the wrong way (the
import-linter contracts in pyproject.toml), when a module sits outside every
layer, when an app reaches into another app's private names, or when ruff
finds a problem or unformatted code.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
APPS = tuple(CONFIG["root_packages"])


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def _lint_imports(config: Path) -> subprocess.CompletedProcess:
    # --no-cache: the check must not leave a cache directory in the checkout.
    return _run(
        "-c",
        "from importlinter.cli import lint_imports_command; lint_imports_command()",
        str(config),
        "--no-cache",
    )


def test_import_contracts_are_kept():
    result = _lint_imports(ROOT / "pyproject.toml")
    assert result.returncode == 0, (
        "An import breaks the layers in pyproject.toml ([tool.importlinter]); "
        "move the code to the layer it belongs to, or invert the call "
        "(docs/architecture.md says how):\n" + result.stdout + result.stderr
    )


def test_a_broken_contract_fails_the_check(tmp_path):
    # registry.models imports registry.databases; a contract forbidding it must
    # fail, or the check above could pass without checking anything.
    config = tmp_path / "contracts.toml"
    config.write_text(
        "[tool.importlinter]\n"
        f"root_packages = {list(APPS)!r}\n"
        "[[tool.importlinter.contracts]]\n"
        'name = "models know no connections"\n'
        'type = "forbidden"\n'
        'source_modules = ["registry.models"]\n'
        'forbidden_modules = ["registry.databases"]\n'
    )
    result = _lint_imports(config)
    assert result.returncode != 0
    assert "registry.models -> registry.databases" in result.stdout


def _layer_modules() -> set[str]:
    names: set[str] = set()
    for contract in CONFIG["contracts"]:
        if contract["type"] == "layers":
            for layer in contract["layers"]:
                names.update(
                    part.strip() for part in layer.replace("|", ":").split(":")
                )
    return names


def test_every_module_of_the_apps_is_in_a_layer():
    layered = _layer_modules()
    graph = grimp.build_graph(*APPS)

    def covered(module: str) -> bool:
        parts = module.split(".")
        return any(".".join(parts[:end]) in layered for end in range(1, len(parts) + 1))

    outside = sorted(m for m in graph.modules if m not in APPS and not covered(m))
    assert not outside, (
        f"Modules in no layer of pyproject.toml's layers contract: {outside}; add "
        "each to the layer it belongs to, so the contracts check its imports."
    )


def _private_imports(*, app: str, source: str, label: str) -> list[str]:
    """Return the `from other_app... import _name` imports of one source file."""
    found = []
    for node in ast.walk(ast.parse(source, filename=label)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            top = node.module.split(".")[0]
            if top in APPS and top != app:
                found += [
                    f"{label}:{node.lineno} imports {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    return found


def test_no_app_imports_another_apps_private_names():
    offenders = [
        line
        for app in APPS
        for path in sorted((ROOT / app).rglob("*.py"))
        for line in _private_imports(
            app=app, source=path.read_text(), label=str(path.relative_to(ROOT))
        )
    ]
    assert not offenders, (
        "Private names used across apps; make what is shared public and name it "
        f"for what it is: {offenders}"
    )


def test_the_private_name_check_sees_a_reach_across_apps():
    source = (
        "from indexing.services import _secret, public\nfrom search.x import _own\n"
    )
    assert _private_imports(app="search", source=source, label="search/x.py") == [
        "search/x.py:1 imports indexing.services._secret"
    ]


@pytest.mark.parametrize(
    "args",
    [("check", "."), ("format", "--check", ".")],
    ids=["ruff-check", "ruff-format"],
)
def test_ruff_is_clean(args):
    result = _run("-m", "ruff", *args, "--no-cache")
    assert result.returncode == 0, (
        f"`ruff {' '.join(args)}` failed; run `.venv/bin/ruff check --fix .` and "
        "`.venv/bin/ruff format .`:\n" + result.stdout + result.stderr
    )
