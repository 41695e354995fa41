"""List and call every tool with the MCP Inspector CLI, a client this project did not write.

Run: .venv/bin/python bench/inspector_cli.py [--project demo]
(after `manage.py quickstart`, which indexes this repository into `demo`)

Installs `@modelcontextprotocol/inspector` from the npm registry into
$CODEBASE_MCP_HOME/inspector on first use, starts `manage.py runmcp` through
it for each call (`--cli --method tools/list`, then `tools/call` per tool),
and prints, per tool, whether the call answered and the first line of its
text. Exits non-zero when a tool is missing from the list or a call fails.
It leaves behind the project `inspector-PID` it indexes a scratch file into
(`manage.py dropproject inspector-PID --yes` removes it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import ROOT, django_setup, machine_description

PACKAGE = "@modelcontextprotocol/inspector@2.12.0"


def inspector(home: Path) -> Path:
    target = home / "inspector"
    binary = target / "node_modules" / ".bin" / "mcp-inspector"
    if not binary.exists():
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--prefix",
                str(target),
                "--no-audit",
                "--no-fund",
                PACKAGE,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return binary


def run(binary: Path, *arguments: str) -> dict:
    command = [
        str(binary),
        "--cli",
        sys.executable,
        str(ROOT / "manage.py"),
        "runmcp",
        *arguments,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip() or done.stdout.strip())
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", default="demo")
    args = parser.parse_args()
    django_setup()
    from django.conf import settings

    print(machine_description())
    binary = inspector(Path(settings.CODEBASE_MCP_HOME))
    listed = run(binary, "--method", "tools/list")
    names = sorted(tool["name"] for tool in listed["tools"])
    print(f"tools/list: {len(names)} tools: {', '.join(names)}")
    scratch = Path(tempfile.mkdtemp(prefix="inspector-"))
    (scratch / "hello.py").write_text("def hello():\n    return 'hello'\n")
    project = ["--tool-arg", f"project_id={args.project}"]
    # Indexing goes into the project create_project makes (sorted first).
    own = f"inspector-{os.getpid()}"
    fresh = ["--tool-arg", f"project_id={own}"]
    calls = {
        "set_working_directory": ["--tool-arg", f"directory={ROOT}"],
        "index_repository": ["--tool-arg", f"repo_path={scratch}", *fresh],
        "start_indexing_background": ["--tool-arg", f"repo_path={scratch}", *fresh],
        "search_code": ["--tool-arg", "query=trigram index", *project],
        "find_symbol": ["--tool-arg", "name=code_grep", *project],
        "find_references": ["--tool-arg", "name=code_grep", *project],
        "file_outline": ["--tool-arg", "path=search/grep.py", *project],
        "grep_code": ["--tool-arg", "pattern=def code_grep", *project],
        "list_projects": [],
        "create_project": ["--tool-arg", f"name={own}"],
        "get_project_status": [*project],
        "refresh_index": [*fresh],
    }
    failures = sorted(set(calls) - set(names)) + sorted(
        set(names) - set(calls) - {"get_indexing_status"}
    )
    for name in names:
        if name == "get_indexing_status":
            continue
        try:
            answer = run(
                binary, "--method", "tools/call", "--tool-name", name, *calls[name]
            )
        except (RuntimeError, KeyError, json.JSONDecodeError) as exc:
            failures.append(name)
            print(f"  {name}: FAILED {exc}")
            continue
        text = answer["content"][0]["text"]
        ok = not answer.get("isError")
        if not ok:
            failures.append(name)
        print(f"  {name}: {'ok' if ok else 'ERROR'}  {text.splitlines()[0][:100]}")
        if name == "start_indexing_background" and ok:
            job = answer["structuredContent"]["job_id"]
            status = run(
                binary,
                "--method",
                "tools/call",
                "--tool-name",
                "get_indexing_status",
                "--tool-arg",
                f"job_id={job}",
            )
            print(
                f"  get_indexing_status: ok  {status['content'][0]['text'].splitlines()[0]}"
            )
    if failures:
        sys.exit(f"failed: {failures}")
    print("every tool listed and answered")


if __name__ == "__main__":
    main()
