"""The navigation commands print what the selectors find, as text or JSON."""

import json
import textwrap
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from indexing.services import repository_index

SOURCE = """
class Cart:
    def add(self, item):
        self.items.append(item)


def checkout(cart):
    cart.add("receipt")
"""


@pytest.fixture
def shop(project_factory, tmp_path):
    repo = tmp_path / "shop"
    repo.mkdir()
    (repo / "cart.py").write_text(textwrap.dedent(SOURCE).lstrip())
    project = project_factory()
    repository_index(project=project, repo_path=str(repo), embed=False)
    return project


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_symbols_references_and_outline_commands(shop):
    text = run("symbols", "add", "--project", shop.name)
    assert "cart.py:2-3  method Cart.add" in text
    found = json.loads(run("symbols", "Cart.add", "--project", shop.name, "--json"))
    assert found["symbols"][0]["body"].startswith("    def add")
    uses = run("references", "add", "--project", shop.name)
    assert "call" in uses and "[checkout]" in uses and "1 uses in 1 files" in uses
    outline = json.loads(run("outline", "cart.py", "--project", shop.name, "--json"))
    assert [n["name"] for n in outline["symbols"]] == ["Cart", "checkout"]
    assert "2-3  method add" in run("outline", "cart.py", "--project", shop.name)


def test_navigation_commands_turn_bad_input_into_command_errors(shop):
    with pytest.raises(CommandError, match="empty"):
        run("symbols", " ", "--project", shop.name)
    with pytest.raises(CommandError, match="No indexed file"):
        run("outline", "missing.py", "--project", shop.name)
