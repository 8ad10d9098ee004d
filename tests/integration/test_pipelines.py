"""Pipelines on the local cloud: compiled state machines run by the emulator's ASL interpreter, one
stage-runner invocation per Task state."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from lighthouse.auth.tokens import Principal
from lighthouse.composition import Components
from lighthouse.errors import Forbidden, ValidationFailed
from lighthouse.pipelines.connections import Connection
from lighthouse.pipelines.manifests import ConfigInvalid
from lighthouse.pipelines.models import CreateTask, Overrides, TaskView
from lighthouse_tools.localcloud.cloud import LocalCloud, LocalCloudOptions
from tests.integration.conftest import TIME_SCALE

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "code-review"
ADMIN = Principal("root", "admin", 0, 2**40, "t-admin")
AGENT = Principal("dev", "agent", 0, 2**40, "t-agent")


# The projects of every pipeline these tests run: "dev" is a member of each (tasks and project
# memory are for a project's members).
PROJECTS = [
    "demo", "handbook", "committee", "supervisor", "fallbacks", "remembering", "remote", "resumable",
    "retries", "slow", "vetoed", "writer",
]  # fmt: skip


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(LocalCloudOptions(aws_port=0, api_port=0, time_scale=TIME_SCALE, start_schedules=False)) as running:
        running.components().agents.register(AGENT.agent_id, "agent", projects=PROJECTS)
        yield running


def config(name: str, nodes: list[dict[str, Any]], edges: list[dict[str, Any]], **extra: Any) -> dict[str, str]:
    agents = extra.pop("agents")
    tools = extra.pop("tools", [])
    return {
        "agents.yaml": yaml.safe_dump(
            {"agents": agents, "prices": {"m": {"prompt_per_1k": 1.0, "completion_per_1k": 2.0}}}
        ),
        "tools.yaml": yaml.safe_dump({"tools": tools}),
        "workflow.yaml": yaml.safe_dump(
            {"workflows": [{"name": f"{name}_flow", "start": nodes[0]["id"], "nodes": nodes, "edges": edges}]}
        ),
        "pipelines.yaml": yaml.safe_dump(
            {"pipelines": [{"name": name, "workflow": f"{name}_flow", "project": name, **extra}]}
        ),
    }


def scripted(agent_id: str, *responses: str, **fields: Any) -> dict[str, Any]:
    schema = fields.pop("output_schema", {"type": "object"})
    return {
        "id": agent_id,
        "provider": "scripted",
        "model": "m",
        "responses": list(responses),
        "output_schema": schema,
        **fields,
    }


def run(
    parts: Components, pipeline: str, task_input: Any = None, principal: Principal = AGENT, **overrides: bool
) -> TaskView:
    service = parts.tasks
    task = service.create_task(
        principal, CreateTask(input=task_input or {}, pipeline=pipeline, overrides=Overrides(**overrides))
    )
    return wait(parts, task.task_id, principal)


def wait(parts: Components, task_id: str, principal: Principal = AGENT, timeout: float = 60) -> TaskView:
    service = parts.tasks
    deadline = time.monotonic() + timeout
    while True:
        task = service.task(principal, task_id)
        if task.status not in ("PENDING", "RUNNING") or time.monotonic() > deadline:
            return task
        time.sleep(0.1)


def execution_status(cloud: LocalCloud, task: TaskView) -> str:
    return str(cloud.client("stepfunctions").describe_execution(executionArn=task.executions[-1])["status"])


def test_the_example_runs_branches_merges_and_routes(parts: Components, cloud: LocalCloud) -> None:
    files = {p.name: p.read_text() for p in EXAMPLE.glob("*.yaml")}
    registered = parts.pipelines.register(ADMIN, files).pipelines
    assert [p.name for p in registered] == ["code-review"]
    s3 = cloud.client("s3")
    s3.put_object(
        Bucket=os.environ["LIGHTHOUSE_WORKSPACE_BUCKET"], Key="workspaces/demo/src/upload.py", Body=b"x = 1\n"
    )
    task = parts.tasks.create_task(AGENT, CreateTask(input={"diff": "+ check size"}, mode="review", tags=["code"]))
    assert task.routing["by"] == "match"
    done = wait(parts, task.task_id)

    assert done.status == "COMPLETED", done.failure
    assert done.stages["checks"].output["stdout"] == "1 python files\n"
    assert set(done.stages["reviews"].output) == {"security", "style"}  # keyed by source node
    assert done.stages["reviews"].output["style"] == {"comments": ["name the constant MAX_UPLOAD_BYTES"]}
    assert done.stages["verdict"].route == "request_changes"
    assert "approve_note" not in done.stages
    assert done.output == done.stages["changes_note"].output
    assert "removed a Markdown code fence" in done.stages["summarize"].repairs
    assert done.total_tokens == sum(s.tokens for s in done.stages.values()) > 0
    assert done.cost == pytest.approx(sum(s.cost for s in done.stages.values()))
    assert execution_status(cloud, done) == "SUCCEEDED"
    events = [e.type for e in parts.events.load(f"task#{done.task_id}")]
    for expected in (
        "TASK_CREATED",
        "TASK_RUNNING",
        "STAGE_STARTED",
        "LLM_CALLED",
        "TOOL_CALLED",
        "MEMORY_RETRIEVED",
        "ROUTING_DECIDED",
        "TASK_COMPLETED",
    ):
        assert expected in events
    view = parts.pipelines.pipeline("code-review")
    assert view.definition["States"]["Run"]["Type"] == "Parallel"


def test_an_invalid_stage_answer_takes_the_fallback_edge(parts: Components, cloud: LocalCloud) -> None:
    files = config(
        "fallbacks",
        [
            {"id": "draft", "type": "agent", "agent": "sloppy"},
            {"id": "rescue", "type": "agent", "agent": "careful"},
            {"id": "publish", "type": "agent", "agent": "careful"},
        ],
        [
            {"from": "draft", "to": "publish"},
            {"from": "draft", "to": "rescue", "type": "fallback", "categories": ["json"]},
        ],
        agents=[
            scripted(
                "sloppy",
                "no JSON here",
                "still none",
                json_retries=1,
                output_schema={"type": "object", "required": ["text"]},
            ),
            scripted("careful", '{"text": "rescued"}'),
        ],
    )
    parts.pipelines.register(ADMIN, files)
    done = run(parts, "fallbacks")
    assert done.status == "COMPLETED", done.failure
    assert done.stages["draft"].status == "failed"
    signature = done.stages["draft"].failure
    assert signature is not None
    assert {k: signature[k] for k in ("stage", "node_type", "pipeline", "category")} == {
        "stage": "draft",
        "node_type": "agent",
        "pipeline": "fallbacks",
        "category": "json",
    }
    assert done.stages["draft"].llm_calls == 2  # the answer and one re-ask
    assert done.output == {"text": "rescued"}
    assert "publish" not in done.stages


def test_a_failing_tool_is_retried_then_succeeds(parts: Components, cloud: LocalCloud, tmp_path: Path) -> None:
    files = config(
        "retries",
        [
            {
                "id": "flaky",
                "type": "tool",
                "tool": "flaky",
                "arguments": {"counter_file": str(tmp_path / "n"), "fail_times": 1},
            }
        ],
        [],
        agents=[scripted("unused", "{}")],
        tools=[
            {
                "id": "flaky",
                "kind": "custom",
                "handler": "tests.fixtures.pipeline_plugins:flaky_tool",
                "input_schema": {"type": "object"},
            }
        ],
        retry={"flaky": {"max_attempts": 2, "interval_seconds": 1, "categories": ["tool"]}},
    )
    parts.pipelines.register(ADMIN, files)
    done = run(parts, "retries")
    assert done.status == "COMPLETED", done.failure
    assert done.stages["flaky"].attempts == 2
    assert done.output == {"ok": True, "calls": 2}


def test_a_failed_task_resumes_at_the_failed_stage_without_rerunning_finished_ones(
    parts: Components, cloud: LocalCloud, tmp_path: Path
) -> None:
    files = config(
        "resumable",
        [
            {"id": "plan", "type": "agent", "agent": "planner"},
            {
                "id": "apply",
                "type": "tool",
                "tool": "flaky",
                "arguments": {"counter_file": str(tmp_path / "n"), "fail_times": 1},
            },
        ],
        [{"from": "plan", "to": "apply"}],
        agents=[scripted("planner", '{"plan": "one"}', '{"plan": "two"}')],
        tools=[
            {
                "id": "flaky",
                "kind": "custom",
                "handler": "tests.fixtures.pipeline_plugins:flaky_tool",
                "input_schema": {"type": "object"},
            }
        ],
    )
    parts.pipelines.register(ADMIN, files)
    failed = run(parts, "resumable")
    assert failed.status == "FAILED"
    assert failed.failure is not None
    assert {k: failed.failure[k] for k in ("stage", "node_type", "category")} == {
        "stage": "apply",
        "node_type": "tool",
        "category": "tool",
    }
    assert "flaky failure 1" in failed.failure["message"]

    parts.tasks.resume(AGENT, failed.task_id)
    done = wait(parts, failed.task_id)
    assert done.status == "COMPLETED", done.failure
    assert done.stages["plan"].llm_calls == 1  # not run again
    assert done.stages["plan"].output == {"plan": "one"}
    assert done.stages["apply"].attempts == 2
    assert len(done.executions) == 2
    with pytest.raises(Exception, match="only a FAILED task"):
        parts.tasks.resume(AGENT, failed.task_id)


def test_safe_modes_are_applied_and_recorded(parts: Components, cloud: LocalCloud) -> None:
    files = config(
        "writer",
        [{"id": "save", "type": "tool", "tool": "save", "arguments": {"path": "notes.md", "content": "hello"}}],
        [],
        agents=[scripted("unused", "{}")],
        tools=[{"id": "save", "builtin": "filesystem.write_file"}],
    )
    parts.pipelines.register(ADMIN, files)
    bucket = os.environ["LIGHTHOUSE_WORKSPACE_BUCKET"]

    skipped = run(parts, "writer", skip_tools=True)
    assert skipped.status == "COMPLETED"
    assert skipped.output == {"skipped": True, "tool": "save"}
    dry = run(parts, "writer", dry_run=True)
    assert dry.status == "COMPLETED"
    assert dry.mutations == [{"path": "notes.md", "change": "written", "bytes": 5, "stage": "save", "dry_run": True}]
    listed = cloud.client("s3").list_objects_v2(Bucket=bucket, Prefix="workspaces/writer/")
    assert listed.get("KeyCount", 0) == 0
    blocked = run(parts, "writer", analysis_only=True)
    assert blocked.status == "FAILED"
    assert blocked.failure is not None
    assert blocked.failure["category"] == "security"
    assert blocked.overrides["analysis_only"] is True
    real = run(parts, "writer")
    assert real.mutations[0]["dry_run"] is False
    assert cloud.client("s3").get_object(Bucket=bucket, Key="workspaces/writer/notes.md")["Body"].read() == b"hello"
    # The real write (not the dry run) is in the project's file history, by the task.
    versions = parts.history.versions(ADMIN, "writer", "notes.md", 10, None).versions
    assert [(v.type, v.agent) for v in versions] == [("FILE_CREATED", f"task:{real.task_id}")]
    assert parts.history.file_at(ADMIN, "writer", "notes.md", versions[0].at).content == "hello"


def test_a_running_task_can_be_cancelled(parts: Components, cloud: LocalCloud, tmp_path: Path) -> None:
    files = config(
        "slow",
        [
            {"id": "wait", "type": "tool", "tool": "sleep", "arguments": {"command": ["sleep", "3"]}},
            {"id": "after", "type": "agent", "agent": "late"},
        ],
        [{"from": "wait", "to": "after"}],
        agents=[scripted("late", "{}")],
        tools=[{"id": "sleep", "builtin": "command.run", "allowlist": ["sleep"]}],
    )
    parts.pipelines.register(ADMIN, files)
    task = parts.tasks.create_task(AGENT, CreateTask(input={}, pipeline="slow"))
    time.sleep(0.5)
    cancelled = parts.tasks.cancel(AGENT, task.task_id)
    assert cancelled.status == "CANCELLED"
    time.sleep(4)
    final = parts.tasks.task(AGENT, task.task_id)
    assert final.status == "CANCELLED"
    assert "after" not in final.stages or final.stages["after"].status != "finished"
    assert execution_status(cloud, final) in ("ABORTED", "FAILED")
    with pytest.raises(Exception, match="already CANCELLED"):
        parts.tasks.cancel(AGENT, task.task_id)


def test_registration_is_for_admins_and_refuses_invalid_configs(parts: Components, cloud: LocalCloud) -> None:
    files = config("nobody", [{"id": "a", "type": "agent", "agent": "ghost"}], [], agents=[scripted("x", "{}")])
    with pytest.raises(Forbidden):
        parts.pipelines.register(AGENT, files)
    with pytest.raises(ConfigInvalid) as refused:
        parts.pipelines.register(ADMIN, files)
    assert refused.value.details["problems"][0]["rule"] == "agent_exists"
    with pytest.raises(ValidationFailed, match="no pipeline matches"):
        parts.tasks.create_task(AGENT, CreateTask(input={}, mode="nothing", tags=["x"]))
    with pytest.raises(ValidationFailed, match="no pipeline 'ghost'"):
        parts.tasks.create_task(AGENT, CreateTask(input={}, pipeline="ghost"))


def test_project_memory_reaches_the_prompt_through_the_context_profile(parts: Components, cloud: LocalCloud) -> None:
    files = config(
        "remembering",
        [{"id": "answer", "type": "agent", "agent": "librarian"}],
        [],
        agents=[scripted("librarian", '{"ok": true}', context_profile="docs")],
    )
    files["memory.yaml"] = yaml.safe_dump(
        {
            "stores": [{"name": "task", "scope": "task"}, {"name": "handbook", "scope": "project"}],
            "profiles": [{"name": "docs", "max_tokens": 500, "recent_k": 5, "stores": ["handbook", "task"]}],
        }
    )
    files["plugins.yaml"] = yaml.safe_dump({"telemetry": {"redact": False}})
    parts.pipelines.register(ADMIN, files)
    from lighthouse.pipelines.models import Remember

    stored = parts.tasks.remember(
        AGENT, Remember(store="handbook", scope="project", project="remembering", text="Uploads are capped at 10 MB.")
    )
    assert stored.store_key == "handbook#remembering"
    done = run(parts, "remembering")
    assert done.status == "COMPLETED", done.failure
    events = {e.type: e.event.model_dump() for e in parts.events.load(f"task#{done.task_id}")}
    assert events["MEMORY_RETRIEVED"]["kept"] == [stored.item_id]
    assert "Uploads are capped at 10 MB." in events["LLM_CALLED"]["prompt"]  # not redacted: configured so


def test_a_plugin_veto_takes_the_error_edge_and_sinks_see_redacted_events(
    parts: Components, cloud: LocalCloud, tmp_path: Path
) -> None:
    from tests.fixtures import pipeline_plugins

    sink = tmp_path / "events.jsonl"
    files = config(
        "vetoed",
        [
            {"id": "save", "type": "tool", "tool": "save", "arguments": {"path": "x.md", "content": "secret text"}},
            {"id": "report", "type": "agent", "agent": "reporter"},
        ],
        [{"from": "save", "to": "report", "type": "error"}],
        agents=[scripted("reporter", '{"reported": true}')],
        tools=[{"id": "save", "builtin": "filesystem.write_file"}],
    )
    files["plugins.yaml"] = yaml.safe_dump(
        {
            "plugins": [
                {"name": "audit", "import": "tests.fixtures.pipeline_plugins:Recorder", "config": {"name": "audit"}},
                {
                    "name": "freeze",
                    "import": "tests.fixtures.pipeline_plugins:NoWrites",
                    "config": {"reason": "frozen"},
                },
            ],
            "telemetry": {"sinks": [f"jsonl:{sink}"], "redact": True},
        }
    )
    parts.pipelines.register(ADMIN, files)
    pipeline_plugins.CALLS.clear()
    done = run(parts, "vetoed")
    assert done.status == "COMPLETED", done.failure
    failure = done.stages["save"].failure
    assert failure is not None
    assert failure["category"] == "security"
    assert "freeze: frozen" in failure["message"]
    assert done.output == {"reported": True}
    assert pipeline_plugins.CALLS[0] == "audit:before_task"
    assert "audit:on_error" in pipeline_plugins.CALLS
    assert pipeline_plugins.CALLS[-1] == "audit:on_complete"
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    tool_call = next(line for line in lines if line["type"] == "TOOL_CALLED")
    assert tool_call["data"]["arguments"]["redacted"] is True
    assert "secret text" not in sink.read_text()


@pytest.mark.parametrize(
    ("example", "pipeline", "expected"),
    [
        ("committee", "committee", {"minutes": "Adopted 2-1; operations asked for a runbook."}),
        ("supervisor", "supervisor", {"text": "Updated the README section on uploads."}),
        ("chat-with-memory", "chat", {"reply": "Uploads are capped at 10 MB; see the handbook."}),
    ],
)
def test_the_pattern_examples_run_through_the_public_api(
    parts: Components, cloud: LocalCloud, example: str, pipeline: str, expected: dict[str, str]
) -> None:
    directory = EXAMPLE.parent / example
    parts.pipelines.register(ADMIN, {p.name: p.read_text() for p in directory.glob("*.yaml")})
    if example == "chat-with-memory":
        from lighthouse.pipelines.models import Remember

        parts.tasks.remember(
            AGENT, Remember(store="handbook", scope="project", project="handbook", text="Uploads: 10 MB max.")
        )
    done = run(parts, pipeline, {"question": "?"})
    assert done.status == "COMPLETED", done.failure
    assert done.output == expected
    if example == "committee":
        assert set(done.stages["opinions"].output) == {"optimist", "skeptic", "operator"}
    if example == "supervisor":
        assert done.stages["docs"].failure is not None
        assert done.stages["docs"].failure["category"] == "json"


class _ChatCompletions(BaseHTTPRequestHandler):
    """A local OpenAI-compatible endpoint: answers every chat completion with `reply`, counting tokens."""

    reply = '{"summary": "from a real adapter"}'
    keys: list[str] = []

    def do_POST(self) -> None:
        json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _ChatCompletions.keys.append(self.headers.get("Authorization", ""))
        body = json.dumps(
            {"choices": [{"message": {"content": self.reply}}], "usage": {"prompt_tokens": 40, "completion_tokens": 8}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_an_agent_on_an_openai_compatible_provider_uses_its_key_and_counts_its_tokens(
    parts: Components, cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatCompletions)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        agent = {
            "id": "remote",
            "provider": "openai",
            "model": "m",
            "connection": "local-openai",
            "output_schema": {"type": "object", "required": ["summary"]},
        }
        parts.pipelines.register(
            ADMIN, config("remote", [{"id": "ask", "type": "agent", "agent": "remote"}], [], agents=[agent])
        )
        missing = run(parts, "remote")
        assert missing.status == "FAILED"
        assert missing.failure is not None
        assert missing.failure["category"] == "config"
        assert "local-openai" in missing.failure["message"]

        parts.connections.put(
            "local-openai",
            Connection(
                provider="openai", base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", api_key="sk-local"
            ),
        )
        done = run(parts, "remote")
        assert done.status == "COMPLETED", done.failure
        assert done.output == {"summary": "from a real adapter"}
        assert (done.prompt_tokens, done.completion_tokens) == (40, 8)
        assert done.cost == pytest.approx(40 / 1000 * 1.0 + 8 / 1000 * 2.0)
        assert _ChatCompletions.keys[-1] == "Bearer sk-local"
    finally:
        server.shutdown()
