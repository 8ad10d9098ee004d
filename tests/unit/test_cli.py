"""CLI commands refuse incomplete input with a clear message and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from lighthouse_tools.cli import main


def test_mcp_without_api_url_or_secret_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for variable in ("LIGHTHOUSE_API_URL", "LIGHTHOUSE_AGENT_ID", "LIGHTHOUSE_AGENT_SECRET"):
        monkeypatch.delenv(variable, raising=False)

    assert main(["--state-file", str(tmp_path / "none.json"), "mcp", "--agent-id", "a"]) == 2
    assert "--api-url" in capsys.readouterr().err


def test_session_without_a_secret_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LIGHTHOUSE_AGENT_SECRET", raising=False)

    assert main(["--state-file", str(tmp_path / "none.json"), "session", "a", "--api-url", "http://127.0.0.1:9"]) == 2
    assert "LIGHTHOUSE_AGENT_SECRET" in capsys.readouterr().err


def test_agents_add_without_a_platform_says_how_to_start_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIGHTHOUSE_EVENTS_TABLE", raising=False)

    with pytest.raises(SystemExit, match="lighthouse up"):
        main(["--state-file", str(tmp_path / "none.json"), "agents", "add", "alice"])


@pytest.mark.parametrize("workers", ["-1", "17", "two"])
def test_up_refuses_a_worker_count_it_cannot_run(workers: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["up", "--workers", workers])

    assert refused.value.code == 2
    assert "--workers" in capsys.readouterr().err
