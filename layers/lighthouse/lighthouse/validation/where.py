"""Where a tool call runs, and what a classifier records about one simple command."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from lighthouse.validation import shell

Match = tuple[str, str]  # (rule, what matched)


@dataclass(frozen=True)
class Where:
    """Where the call runs: its directory, the project roots, the temp dirs, the request's HOME."""

    cwd: str
    home: str
    tmpdir: str = "/tmp"  # noqa: S108 - $TMPDIR's value when the request does not give one
    roots: tuple[str, ...] = ()
    temp: tuple[str, ...] = ()  # temp dirs, where deleting and writing is as free as in the roots

    def expand(self, path: str) -> str:
        if path == "~" or path.startswith("~/"):
            path = self.home + path[1:]
        for name, value in (("HOME", self.home), ("TMPDIR", self.tmpdir)):
            path = path.replace("${" + name + "}", value).replace("$" + name, value)
        return path

    def absolute(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self.cwd, self.expand(path)))

    def inside(self, path: str) -> bool:
        """Within a project root or a temp dir (lexically; a glob counts by its directory)."""
        target = self.absolute(re.sub(r"[*?\[].*$", "", path) or ".")
        return any(target == root or target.startswith(root.rstrip("/") + "/") for root in (*self.roots, *self.temp))


@dataclass
class Verdict:
    denies: list[Match] = field(default_factory=list)
    everyday: str | None = None
    push_branches: list[str] = field(default_factory=list)  # branches a `git push` names


def matched_text(command: shell.SimpleCommand) -> str:
    return " ".join(command.argv)[:200]


def deny(verdict: Verdict, rule: str, command: shell.SimpleCommand) -> None:
    verdict.denies.append((rule, matched_text(command)))


def short_flags(args: list[str]) -> set[str]:
    return {f for a in args if a.startswith("-") and not a.startswith("--") for f in a[1:]}
