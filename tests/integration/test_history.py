"""File history on the local cloud (issue #17): PostToolUse payloads for each tool into history, the
content stored once, deltas bounded by full copies, tampered content refused, any stream at any
instant, the context and shadow views. (A pipeline's workspace change: tests/integration/test_pipelines.py.)"""

from __future__ import annotations

import base64
import json
import secrets
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lighthouse.auth.tokens import Principal
from lighthouse.composition import Components
from lighthouse.elicitation.models import CreateElicitation, RespondToElicitation
from lighthouse.errors import Forbidden, MalformedRequest, NotFound, ReplayDetected, ValidationFailed
from lighthouse.history.blobs import PREFIX, IntegrityError
from lighthouse.history.models import PostToolUseInput
from lighthouse.history.service import Content
from lighthouse_tools.localcloud.cloud import LocalCloud
from tests.integration.conftest import AgentClient

pytestmark = pytest.mark.integration
CWD = "/home/dev/storefront"
PROJECT = "storefront"


def agent(parts: Components, *projects: str) -> Principal:
    agent_id = f"coder-{secrets.token_hex(3)}"
    parts.agents.register(agent_id, "agent", projects=list(projects))
    return Principal(agent_id, "agent", 0, 2**40, "t")


def post(tool: str, tool_input: dict[str, Any], response: Any = None, **extra: Any) -> PostToolUseInput:
    """PostToolUse hook input as Claude Code sends it (docs: hooks reference, PostToolUse input)."""
    return PostToolUseInput.model_validate(
        {
            "session_id": "abc123",
            "transcript_path": "/home/dev/.claude/projects/x.jsonl",
            "cwd": CWD,
            "permission_mode": "default",
            "hook_event_name": "PostToolUse",
            "tool_name": tool,
            "tool_input": tool_input,
            "tool_response": response,
            "tool_use_id": "toolu_01" + secrets.token_hex(4),
            **extra,
        }
    )


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_each_tool_payload_becomes_history(parts: Components) -> None:
    history, coder = parts.history, agent(parts, PROJECT)
    path = f"{CWD}/src/cart.py"
    written = history.capture(
        coder,
        None,
        post("Write", {"file_path": path, "content": "a = 1\nb = 2\n"}, {"filePath": path, "success": True}),
    )
    assert (written.project, written.recorded[0].type) == (PROJECT, "FILE_CREATED")
    history.capture(
        coder,
        None,
        post(
            "Edit",
            {"file_path": path, "old_string": "b = 2", "new_string": "b = 3"},
            {"filePath": path, "oldString": "b = 2", "newString": "b = 3"},
        ),
    )
    history.capture(
        coder,
        None,
        post(
            "MultiEdit",
            {
                "file_path": path,
                "edits": [
                    {"old_string": "a = 1", "new_string": "a = 10"},
                    {"old_string": "b = 3", "new_string": "b = 30"},
                ],
            },
        ),
    )
    notebook = json.dumps(
        {
            "cells": [{"id": "c1", "cell_type": "code", "source": "1", "metadata": {}, "outputs": []}],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )
    history.capture(coder, None, post("Write", {"file_path": f"{CWD}/n.ipynb", "content": notebook}))
    history.capture(
        coder,
        None,
        post(
            "NotebookEdit",
            {"notebook_path": f"{CWD}/n.ipynb", "cell_id": "c1", "new_source": "2", "edit_mode": "replace"},
        ),
    )
    bash = post(
        "Bash",
        {"command": "git mv src/cart.py src/basket.py && rm n.ipynb"},
        {"stdout": ""},
        lighthouse_files=[
            {
                "path": "src/basket.py",
                "change": "moved",
                "from_path": "src/cart.py",
                "content_b64": b64("a = 10\nb = 30\n"),
            },
            {"path": "n.ipynb", "change": "deleted"},
            {"path": ".env", "change": "created", "size": 12, "note": "ignored"},
        ],
    )
    moved = history.capture(coder, None, bash)
    assert [r.type for r in moved.recorded] == ["FILE_MOVED", "FILE_DELETED", "FILE_CREATED"]
    versions = history.versions(coder, PROJECT, "src/cart.py", 10, None).versions
    assert [v.type for v in versions] == ["FILE_CREATED", "FILE_MODIFIED", "FILE_MODIFIED", "FILE_MOVED"]
    assert all(v.agent == coder.agent_id for v in versions)
    third = history.file_at(coder, PROJECT, "src/cart.py", versions[2].at)
    assert third.content == "a = 10\nb = 30\n"
    assert history.file_at(coder, PROJECT, "src/basket.py", time.time()).content == "a = 10\nb = 30\n"
    notebook_versions = history.versions(coder, PROJECT, "n.ipynb", 10, None).versions
    edited = history.file_at(coder, PROJECT, "n.ipynb", notebook_versions[1].at).content or ""
    assert json.loads(edited)["cells"][0]["source"] == "2"
    tree = {f.path: f for f in history.tree(coder, PROJECT).files}
    assert set(tree) == {"src/basket.py", ".env"}
    assert not tree[".env"].stored
    before_moves = history.tree(coder, PROJECT, notebook_versions[1].at)
    assert {f.path for f in before_moves.files} == {"src/cart.py", "n.ipynb"}
    again = history.capture(
        coder, None, post("Write", {"file_path": f"{CWD}/src/basket.py", "content": "a = 10\nb = 30\n"})
    )
    with pytest.raises(ReplayDetected, match="already recorded"):
        history.capture(coder, None, bash)
    assert again.recorded == []
    assert again.skipped == ["src/basket.py: unchanged"]


def test_the_same_content_is_stored_once_and_deltas_stay_one_read_from_a_full_copy(
    parts: Components, cloud: LocalCloud
) -> None:
    history, s3 = parts.history, cloud.client("s3")
    bucket = parts.settings.history_bucket
    content = "".join(f"line {n}\n" for n in range(200))
    for n in range(40):
        content += f"added {n} {secrets.token_hex(2)}\n"
        history.record("deltas", "big.txt", Content(content.encode()), agent="writer", source="test")
    history.record("deltas", "copy.txt", Content(content.encode()), agent="writer", source="test")
    rows = history.index.versions("deltas", "big.txt", 100, None)[0]
    kinds = []
    for row in rows:
        assert row.sha256 is not None
        head = s3.head_object(Bucket=bucket, Key=PREFIX + row.sha256)
        base = head["Metadata"].get("base")
        if base:
            assert "base" not in s3.head_object(Bucket=bucket, Key=PREFIX + base)["Metadata"]  # a full copy
        kinds.append("delta" if base else "full")
    assert kinds.count("full") >= 40 // parts.settings.history_snapshot_every
    assert kinds.count("delta") >= 30
    copy = history.index.current("deltas", "copy.txt")
    assert copy.sha256 == rows[-1].sha256  # stored once: the second file points at the same blob
    history.blobs.cache.clear()
    assert history.content_at("deltas", "big.txt", rows[20].at)[1] == history.blobs.read(str(rows[20].sha256))


def test_content_that_does_not_match_its_recorded_hash_is_an_error(parts: Components, cloud: LocalCloud) -> None:
    history, coder = parts.history, agent(parts, "tamper")
    history.record("tamper", "a.txt", Content(b"the truth\n"), agent=coder.agent_id, source="test")
    state = history.index.current("tamper", "a.txt")
    body = zlib.compress(b'{"kind": "full"}\nnot the truth\n')
    cloud.client("s3").put_object(Bucket=parts.settings.history_bucket, Key=PREFIX + str(state.sha256), Body=body)
    history.blobs.cache.clear()
    with pytest.raises(IntegrityError, match="hashes to"):
        history.file_at(coder, "tamper", "a.txt", time.time())


def test_members_only_and_paths_confined(parts: Components) -> None:
    history, outsider = parts.history, agent(parts, "elsewhere")
    with pytest.raises(Forbidden):
        history.capture(outsider, None, post("Write", {"file_path": f"{CWD}/x.py", "content": "x"}))
    member = agent(parts, PROJECT)
    with pytest.raises(ValidationFailed, match="outside the project root"):
        history.capture(member, None, post("Write", {"file_path": "/etc/passwd", "content": "x"}))
    with pytest.raises(ValidationFailed):
        history.file_at(member, PROJECT, "../../etc/passwd", time.time())
    files = [
        {"path": "src/fine.py", "change": "created", "content_b64": b64("ok\n")},
        {"path": "../../etc/cron.d/x", "change": "created", "content_b64": b64("no\n")},
    ]
    with pytest.raises(ValidationFailed, match="outside the project root"):
        history.capture(member, None, post("Bash", {"command": "x"}, lighthouse_files=files))
    assert history.index.current(PROJECT, "src/fine.py").version == 0  # one bad path records nothing


def test_a_stream_at_an_instant_and_the_context_view(
    parts: Components, new_agent: Callable[..., AgentClient], tmp_path: Path
) -> None:
    asker, answerer = agent(parts, "ctx"), agent(parts, "ctx")
    created = parts.elicitations.create(
        asker, CreateElicitation(to_agent=answerer.agent_id, message="ok?", schema={"type": "boolean"})
    )
    context = json.loads(parts.history_views.context(answerer, answerer.agent_id).text)
    assert [e["elicitation_id"] for e in context["elicitations_to_answer"]] == [created.elicitation_id]
    asked = json.loads(parts.history_views.context(asker, asker.agent_id).text)["elicitations_asked"]
    assert [e["elicitation_id"] for e in asked] == [created.elicitation_id]
    with pytest.raises(Forbidden):
        parts.history_views.context(asker, answerer.agent_id)
    before = time.time()
    time.sleep(0.01)
    parts.elicitations.respond(
        answerer,
        RespondToElicitation(
            elicitation_id=created.elicitation_id, action="accept", data=True, nonce=secrets.token_hex(16)
        ),
    )
    stream = f"elicitation#{created.elicitation_id}"
    assert parts.history.stream_at(asker, stream, before).state["status"] == "pending"
    now = parts.history.stream_at(answerer, stream, time.time())
    assert now.state["status"] == "accepted"
    assert now.state["salt"] == "[redacted]"
    assert json.loads(parts.history_views.context(asker, asker.agent_id).text)["elicitations_asked"] == []
    with pytest.raises(Forbidden):
        parts.history.stream_at(agent(parts, "ctx"), stream, time.time())


def test_versions_page_across_index_buckets_and_each_instant_finds_its_version(
    parts: Components, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lighthouse.history import logic

    monkeypatch.setattr(logic, "INDEX_BUCKET", 4)
    history, reader = parts.history, agent(parts, "paging")
    for n in range(11):
        history.record("paging", "f.txt", Content(f"version {n}\n".encode()), agent=reader.agent_id, source="t")
    assert len(history.index.current("paging", "f.txt").bucket_starts) == 3
    seen, token = [], None
    while True:
        page = history.versions(reader, "paging", "f.txt", 3, token)
        seen.extend(page.versions)
        token = page.next_token
        if token is None:
            break
    assert [v.version for v in seen] == list(range(1, 12))
    for row in seen:
        assert history.file_at(reader, "paging", "f.txt", row.at).content == f"version {row.version - 1}\n"
    with pytest.raises(NotFound):
        history.file_at(reader, "paging", "f.txt", seen[0].at - 1)
    with pytest.raises(MalformedRequest):
        history.versions(reader, "paging", "f.txt", 3, "not a token")
