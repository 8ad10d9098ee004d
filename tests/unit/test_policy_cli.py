"""`lighthouse policy`: local commands work without an API; bad files are refused before any request."""

from __future__ import annotations

from pathlib import Path

import pytest

from lighthouse.validation.catalog import DENY
from lighthouse_tools.cli import main


def test_classes_lists_every_deny_class_with_its_alternative(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "classes"]) == 0
    printed = capsys.readouterr().out
    for rule in DENY:
        assert f"  {rule}\t" in printed
    assert "instead: git push --force-with-lease" in printed


def test_defaults_prints_the_shipped_policies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "defaults"]) == 0
    assert '@id("permit-everyday-work")' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("", "is empty"),
        ("   \n", "is empty"),
        ("x" * (64 * 1024 + 1), "larger than"),
        (b"\xff\xfe", "cannot read"),
    ],
)
def test_set_refuses_a_missing_empty_oversized_or_binary_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes | None, message: str
) -> None:
    path = tmp_path / "policies.cedar"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert main(["--state-file", str(tmp_path / "none.json"), "policy", "set", str(path)]) == 2
    assert message in capsys.readouterr().err
