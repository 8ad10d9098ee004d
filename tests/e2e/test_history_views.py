"""File history and views against `lighthouse up` (issue #17): PostToolUse payloads shaped as Claude
Code sends them, through the http hook and the command hook; the views over HTTP; and the project
mounted with FUSE and read with ls, cat, grep -r and diff -r, then unmounted with Ctrl+C."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LIGHTHOUSE, Platform, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not Path("/dev/fuse").exists(), reason="no /dev/fuse on this machine: the mount cannot be tested"
    ),
]
PROJECT = "shop"
APP_V1 = "import subprocess\n\n\nclass Cart:\n    def total(self, items):\n        return sum(items)\n"
APP_V2 = APP_V1 + "\n\ndef run(cmd):\n    return subprocess.run(cmd, shell=True)\n"


def post_input(cwd: Path, tool: str, tool_input: dict[str, Any], response: Any) -> dict[str, Any]:
    return {
        "session_id": "00893aaf-19fa-41d2-8238-13269b9b3ca0",
        "transcript_path": f"{cwd}/.claude/t.jsonl",
        "cwd": str(cwd),
        "permission_mode": "default",
        "hook_event_name": "PostToolUse",
        "tool_name": tool,
        "tool_input": tool_input,
        "tool_response": response,
        "tool_use_id": f"toolu_01{secrets.token_hex(8)}",
    }


@pytest.fixture(scope="module")
def coder(platform: Platform) -> dict[str, str]:
    added = platform.cli("agents", "add", "history-coder", "--project", PROJECT, "--json")
    secret = json.loads(added.stdout)["secret"]
    token = platform.cli("hook", "token", "history-coder", "--secret", secret).stdout.strip()
    outsider = json.loads(platform.cli("agents", "add", "history-outsider", "--json").stdout)["secret"]
    return {"secret": secret, "token": token, "outsider": outsider}


def hook(platform: Platform, token: str, body: Any, project: str | None = None) -> requests.Response:
    suffix = f"?project={project}" if project else ""
    return requests.post(
        f"{platform.api_url}/hooks/claude-code/post-tool-use{suffix}",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=30,
    )


def session(platform: Platform, agent: str, secret: str) -> dict[str, str]:
    from tests.e2e.conftest import open_session

    return {"Authorization": f"Bearer {open_session(platform, agent, secret)}"}


def test_capture_then_views_then_the_mount(platform: Platform, coder: dict[str, str], tmp_path: Path) -> None:
    cwd = tmp_path / PROJECT
    (cwd / "src").mkdir(parents=True)
    token = coder["token"]
    # Write (http hook): the content is in the tool's input.
    written = hook(
        platform,
        token,
        post_input(
            cwd,
            "Write",
            {"file_path": f"{cwd}/src/app.py", "content": APP_V1},
            {"filePath": f"{cwd}/src/app.py", "success": True},
        ),
    )
    assert written.status_code == 200, written.text
    assert written.json()["recorded"][0]["type"] == "FILE_CREATED"
    before_edit = time.time()
    time.sleep(0.05)
    edit = {
        "file_path": f"{cwd}/src/app.py",
        "old_string": "        return sum(items)\n",
        "new_string": "        return sum(items)\n\n\ndef run(cmd):\n    return subprocess.run(cmd, shell=True)\n",
    }
    edited = hook(
        platform, token, post_input(cwd, "Edit", edit, {"filePath": edit["file_path"], "originalFile": APP_V1})
    )
    assert edited.json()["recorded"][0]["type"] == "FILE_MODIFIED", edited.text
    # A secret written with Write: recorded, never stored.
    secret_input = post_input(cwd, "Write", {"file_path": f"{cwd}/.env", "content": "KEY=hunter2"}, {})
    secret = hook(platform, token, secret_input)
    assert secret.json()["recorded"][0]["stored"] is False
    # Bash through the command hook, in a git repository: the files git sees changed are sent.
    subprocess.run(["git", "init", "-q", str(cwd)], check=True)
    (cwd / "README.md").write_text("# shop\nsubprocess is used in src/app.py\n")
    (cwd / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    bash = post_input(cwd, "Bash", {"command": "echo '# shop' > README.md"}, {"stdout": "", "stderr": ""})
    completed = subprocess.run(
        [LIGHTHOUSE, "hook", "claude-code", "--event", "post-tool-use", "--api-url", platform.api_url],
        input=json.dumps(bash),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "LIGHTHOUSE_HOOK_TOKEN": token},
    )
    assert completed.returncode == 0, completed.stderr

    headers = session(platform, "history-coder", coder["secret"])
    api = platform.api_url
    current = requests.get(f"{api}/views/{PROJECT}/current/src/app.py", headers=headers, timeout=30)
    assert current.status_code == 200
    assert current.headers["Content-Type"].startswith("text/plain")
    assert "# AST_ANCHOR:" in current.text
    assert "[method:Cart.total]" in current.text
    assert "SECURITY: [shell_true]" in current.text
    assert "last change:" in current.text
    past = requests.get(f"{api}/views/{PROJECT}/history/{before_edit}/src/app.py", headers=headers, timeout=30)
    assert past.status_code == 200
    assert past.text.endswith(APP_V1)
    assert "since then: 1 events" in past.text
    tree = requests.get(f"{api}/history/{PROJECT}/tree", headers=headers, timeout=30).json()
    assert {f["path"]: f["stored"] for f in tree["files"]} == {
        "src/app.py": True,
        ".env": False,
        "README.md": True,
        "id_rsa": False,
    }
    diff = requests.get(
        f"{api}/history/{PROJECT}/diff/src/app.py", params={"from": before_edit}, headers=headers, timeout=30
    ).json()
    assert "+def run(cmd):" in diff["diff"]
    assert diff["added"] == 4
    outsider = session(platform, "history-outsider", coder["outsider"])
    refused = requests.get(f"{api}/views/{PROJECT}/current/src/app.py", headers=outsider, timeout=30)
    assert refused.status_code == 403
    escape = requests.get(f"{api}/views/{PROJECT}/current/src/%2e%2e/%2e%2e/etc/passwd", headers=headers, timeout=30)
    assert escape.status_code in (400, 422)
    assert (
        hook(platform, "not-a-token", post_input(cwd, "Write", {"file_path": "x", "content": ""}, {})).status_code
        == 401
    )
    outside = hook(platform, token, post_input(cwd, "Write", {"file_path": "/etc/passwd", "content": "x"}, {}))
    assert outside.status_code == 422
    malformed = requests.post(
        f"{api}/hooks/claude-code/post-tool-use", data="{not json", timeout=30,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    assert malformed.status_code == 400
    # The refused calls stored nothing, and the platform still answers.
    after = requests.get(f"{api}/history/{PROJECT}/tree", headers=headers, timeout=30).json()
    assert after == tree
    assert requests.get(f"{api}/health", timeout=30).status_code == 200

    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    copy = tmp_path / "copy"
    (copy / "src").mkdir(parents=True)
    (copy / "src" / "app.py").write_text(APP_V1)
    env = {**os.environ, "LIGHTHOUSE_AGENT_ID": "history-coder", "LIGHTHOUSE_AGENT_SECRET": coder["secret"]}
    mounted = subprocess.Popen(
        [
            LIGHTHOUSE,
            "--state-file",
            str(platform.state_file),
            "mount",
            str(mountpoint),
            "--project",
            PROJECT,
            "--api-url",
            api,
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: (mountpoint / "current").exists(), timeout=20)
        listing = subprocess.run(["ls", "-l", str(mountpoint / "current" / "src")], capture_output=True, text=True)
        assert "app.py" in listing.stdout
        assert "r--r--r--" in listing.stdout
        cat = subprocess.run(["cat", str(mountpoint / "current" / "src" / "app.py")], capture_output=True, text=True)
        assert cat.stdout == current.text
        grep = subprocess.run(
            ["grep", "-r", "-l", "subprocess", str(mountpoint / "current")], capture_output=True, text=True
        )
        assert sorted(Path(line).name for line in grep.stdout.split()) == ["README.md", "app.py"]
        instant = f"{mountpoint}/history/{before_edit}"
        same = subprocess.run(["diff", "-r", f"{instant}/src", str(copy / "src")], capture_output=True, text=True)
        assert same.returncode == 1
        assert "===== LIGHTHOUSE HISTORY VIEW" in same.stdout
        assert "def run" not in same.stdout
        with pytest.raises(OSError, match="Read-only file system"):
            (mountpoint / "current" / "src" / "app.py").write_text("no")
    finally:
        mounted.send_signal(signal.SIGINT)
        mounted.wait(20)
    assert str(mountpoint) not in Path("/proc/mounts").read_text()
