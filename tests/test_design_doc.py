"""docs/design.md quotes commands as the way to reproduce its figures: each one must exist.

A command is a code span (or a line of a fenced block that is not a Mermaid
diagram) that starts with `inventory `, `.venv/bin/inventory `, `bench/...`,
`.venv/bin/python bench/...`, `.venv/bin/python -m bench.<name>` or
`scripts/...`. Each is run with `--help`: an
`inventory` command must answer with the usage of exactly its subcommands (argparse
would otherwise print a parent's help for a misspelt subcommand), a `bench/` or
`scripts/` file must exist and exit 0.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "docs" / "design.md"
VENV_BIN = Path(sys.executable).parent

_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.M | re.S)
_SPAN = re.compile(r"`([^`\n]+)`")
_COMMAND = re.compile(
    r"^(?:\.venv/bin/)?(?:python3?\s+|\.venv/bin/python3?\s+)?"
    r"(?P<tool>inventory(?=\s|$)|bench/[\w./-]+|-m\s+bench\.\w+|scripts/[\w.-]+)(?P<rest>.*)$")
_WORD = re.compile(r"^[a-z][a-z-]*$")


def commands_in(markdown: str) -> list[tuple[str, ...]]:
    """The distinct commands quoted in a Markdown text, as (tool, subcommands...)."""
    quoted = []
    for language, body in _FENCE.findall(markdown):
        if language.strip() != "mermaid":
            quoted += body.splitlines()
    quoted += _SPAN.findall(_FENCE.sub("", markdown))
    found: list[tuple[str, ...]] = []
    for text in quoted:
        match = _COMMAND.match(text.strip())
        if not match:
            continue
        tool = " ".join(match["tool"].split())
        command: tuple[str, ...] = (tool,)
        if tool == "inventory":
            for word in match["rest"].split():
                if not _WORD.match(word):
                    break
                command += (word,)
        if command not in found:
            found.append(command)
    return found


def problem_with(command: tuple[str, ...]) -> str | None:
    """None when `command --help` works, else what is wrong with it."""
    tool, *words = command
    if tool == "inventory":
        argv = [str(VENV_BIN / "inventory"), *words, "--help"]
    elif tool.startswith("bench/"):
        if not (ROOT / tool).is_file():
            return f"{tool}: no such file"
        argv = [sys.executable, tool, "--help"]
    elif tool.startswith("-m "):
        module = tool.split()[1]
        if not (ROOT / (module.replace(".", "/") + ".py")).is_file():
            return f"python {tool}: no such module"
        argv = [sys.executable, "-m", module, "--help"]
    else:
        if not os.access(ROOT / tool, os.X_OK):
            return f"{tool}: no such executable"
        argv = [str(ROOT / tool), "--help"]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    shown = ("python " if tool.startswith("-m ") else "") + " ".join(command)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
        return f"`{shown} --help` exited {out.returncode}: {last}"
    if tool == "inventory":
        usage = " ".join(out.stdout.split()[:2 + len(words)])
        if usage != f"usage: inventory {' '.join(words)}".rstrip():
            return f"`{shown}`: no such subcommand (its --help shows `{usage} ...`)"
    return None


def problems(commands: list[tuple[str, ...]]) -> list[str]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return [p for p in pool.map(problem_with, commands) if p]


def test_every_command_quoted_in_the_design_document_exists():
    commands = commands_in(DESIGN.read_text())
    # The extraction itself must be finding the document's commands.
    assert ("inventory", "chaos") in commands
    assert ("bench/run.py",) in commands
    assert len(commands) >= 8, commands
    assert problems(commands) == []


def test_a_command_that_does_not_exist_is_reported():
    markdown = """
Run `inventory chaos --duration 5`, `inventory frobnicate --fast`,
`.venv/bin/python bench/no_such_bench.py --x 1`, `inventory cluster explode`
and `.venv/bin/python -m bench.nothing_here --seconds 8`.

```sh
inventory keys create --tenant T --scopes S --name N
```

```mermaid
flowchart LR
  a[inventory nonsense] --> b
```
"""
    commands = commands_in(markdown)
    assert commands == [
        ("inventory", "keys", "create"), ("inventory", "chaos"),
        ("inventory", "frobnicate"), ("bench/no_such_bench.py",),
        ("inventory", "cluster", "explode"), ("-m bench.nothing_here",),
    ]
    found = problems(commands[1:])  # the first only shows that fenced blocks count
    assert len(found) == 4, found
    assert any("inventory frobnicate" in p for p in found)
    assert any("bench/no_such_bench.py: no such file" in p for p in found)
    assert any("inventory cluster explode" in p for p in found)
    assert any("python -m bench.nothing_here: no such module" in p for p in found)
