"""The command blocks of README.md and docs/*.md, each with the marker written before it.

A command block is a fenced block marked ``sh``, ``bash``, ``shell`` or
``console``. The line before its fence (blank lines aside) may hold one marker:

- ``<!-- not run: REASON -->``: no test runs it;
- ``<!-- run by the moto cycle (...) -->``: tests/infra/test_provision_moto.py
  runs its ``ansible-playbook`` lines.

Every other command block is run by tests/test_docs_commands.py.
"""

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHELLS = {"sh", "bash", "shell", "console"}
NOT_RUN = "not run"
MOTO_CYCLE = "run by the moto cycle"
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<language>[\w-]*)\s*$")
MARKER = re.compile(rf"^<!--\s*(?P<kind>{NOT_RUN}|{MOTO_CYCLE})\b[:\s]*(?P<reason>.*?)\s*-->$", re.S)


@dataclass(frozen=True)
class Block:
    """One command block: where it is, its text (dedented), its marker kind and the marker's reason."""

    path: Path
    line: int
    text: str
    marker: str | None
    reason: str

    @property
    def name(self):
        """``file:line``, relative to the repository, for messages and test ids."""
        return f"{self.path.relative_to(REPO)}:{self.line}"


def documents():
    """README.md and every docs/*.md, in a fixed order."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def command_blocks(path):
    """The command blocks of one markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening or not opening["language"]:
            index += 1
            continue
        indent = len(opening["indent"])
        end = next(n for n in range(index + 1, len(lines)) if lines[n].strip() == "```")
        if opening["language"] in SHELLS:
            body = "\n".join(line[indent:] for line in lines[index + 1 : end]) + "\n"
            before = [line.strip() for line in lines[:index] if line.strip()]
            marker = MARKER.match(before[-1]) if before else None
            blocks.append(
                Block(
                    path,
                    index + 1,
                    body,
                    marker["kind"] if marker else None,
                    marker["reason"] if marker else "",
                )
            )
        index = end + 1
    return blocks


def all_command_blocks():
    """The command blocks of every document."""
    return [block for path in documents() for block in command_blocks(path)]


def logical_lines(text):
    """The lines of a shell block with backslash continuations joined, comments and blanks left out."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def documented_playbook_runs():
    """``(playbook, extra-var assignments)`` of every ansible-playbook line in blocks the moto cycle runs."""
    runs = []
    for block in all_command_blocks():
        if block.marker != MOTO_CYCLE:
            continue
        for line in logical_lines(block.text):
            words = shlex.split(line, comments=True)
            if words[0] != "ansible-playbook":
                continue
            assignments = [words[n + 1] for n in range(2, len(words) - 1) if words[n] == "-e"]
            runs.append((words[1], assignments))
    return runs
