"""The pieces a stage is made of: JSON repair tiers, context fitting, tool confinement and safe
modes (against the emulated S3 workspace), plugins and telemetry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lighthouse.pipelines.errors import ConfigStageError, SecurityStageError, ToolStageError
from lighthouse.pipelines.json_engine import MAJOR, MINOR, SYNTAX, JsonProblem, parse_and_repair
from lighthouse.pipelines.manifests import PluginsManifest, Tool
from lighthouse.pipelines.memory import MemoryItem, fit
from lighthouse.pipelines.plugins import Plugins, Telemetry, redact
from lighthouse.pipelines.tools import ToolRunner, Workspace
from tests.conftest import Provisioned
from tests.fixtures import pipeline_plugins

SCHEMA = {
    "type": "object",
    "required": ["verdict", "score"],
    "properties": {
        "verdict": {"type": "string", "enum": ["ok", "bad"]},
        "score": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "urgent": {"type": "boolean", "default": False},
    },
    "additionalProperties": False,
}


# ---- JSON engine ---------------------------------------------------------------------------------


def test_valid_json_passes_untouched() -> None:
    result = parse_and_repair('{"verdict": "ok", "score": 3}', SCHEMA)
    assert result.value == {"verdict": "ok", "score": 3}
    assert (result.repairs, result.category) == ([], None)


@pytest.mark.parametrize(
    ("text", "repair"),
    [
        ('```json\n{"verdict": "ok", "score": 3}\n```', "removed a Markdown code fence"),
        ('Sure! Here it is: {"verdict": "ok", "score": 3} Hope that helps.', "dropped text around the JSON"),
        ('{"verdict": "ok", "score": 3,}', "removed trailing commas"),
        ("{'verdict': 'ok', 'score': 3}", "replaced single quotes"),
        ('{"verdict": "ok", "score": 3', "closed unbalanced brackets"),
        ('{"verdict": "ok", "score": 3, "tags": ["a"] // done\n}', "removed comments"),
    ],
)
def test_syntax_repairs_are_deterministic_and_recorded(text: str, repair: str) -> None:
    result = parse_and_repair(text, SCHEMA)
    assert result.value["verdict"] == "ok"
    assert repair in result.repairs


def test_minor_schema_mismatches_are_repaired_and_reported() -> None:
    result = parse_and_repair('{"verdict": "ok", "score": "7", "tags": "x", "extra": 1}', SCHEMA)
    assert result.value == {"verdict": "ok", "score": 7, "tags": ["x"], "urgent": False}
    assert result.category == MINOR
    assert "$.score: coerced str to integer" in result.repairs
    assert "$.urgent: filled the default" in result.repairs
    assert "$.extra: dropped (not in the schema)" in result.repairs


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("", SYNTAX),
        ("   ", SYNTAX),
        ("I cannot help with that.", SYNTAX),
        ('{"verdict": "maybe", "score": 1}', MAJOR),
        ('{"score": "many"}', MAJOR),
        ("[1, 2, 3]", MAJOR),
    ],
)
def test_garbage_and_major_mismatches_are_errors_never_accepted(text: str, category: str) -> None:
    with pytest.raises(JsonProblem) as refused:
        parse_and_repair(text, SCHEMA)
    assert refused.value.category == category


# ---- context ---------------------------------------------------------------------------------------


def item(n: int, importance: float, words: int = 40) -> MemoryItem:
    return MemoryItem(f"i{n}", "task", " ".join(["word"] * words), importance, float(n))


def test_context_over_budget_keeps_head_and_tail_and_the_most_important_middle() -> None:
    items = [item(0, 0.1), item(1, 0.9), item(2, 0.2), item(3, 0.8), item(4, 0.1)]
    fitted = fit(items, max_tokens=200)  # each item is 50 tokens: room for four
    assert fitted.kept == ["i0", "i1", "i3", "i4"]
    assert fitted.dropped == ["i2"]
    assert fitted.tokens <= 200
    assert fit(items, 10_000).dropped == []


# ---- tools -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["../secret", "src/../../secret", "/etc/passwd", "~/x", "a\x00b"])
def test_paths_that_leave_the_workspace_are_refused(path: str) -> None:
    with pytest.raises(SecurityStageError):
        Workspace.confine(".", path)


def test_a_tool_root_confines_further() -> None:
    assert Workspace.confine("src", "pkg/../app.py") == "src/app.py"
    with pytest.raises(SecurityStageError, match="leaves the tool's root"):
        Workspace.confine("src", "../README.md")


@pytest.fixture
def workspace(provisioned: Provisioned) -> Workspace:
    s3 = provisioned.client("s3")
    bucket = provisioned.name("LIGHTHOUSE_WORKSPACE_BUCKET")
    s3.put_object(Bucket=bucket, Key="workspaces/demo/src/app.py", Body=b"print('hi')\n")
    return Workspace(s3, bucket, "demo")


def tool(**fields: Any) -> Tool:
    return Tool.model_validate({"id": "t", **fields})


def test_read_write_and_list_stay_in_the_workspace(workspace: Workspace) -> None:
    runner = ToolRunner(workspace)
    read = tool(builtin="filesystem.read_file")
    assert runner.run(read, {"path": "src/app.py"}, analysis_only=False, dry_run=False).result == "print('hi')\n"
    with pytest.raises(SecurityStageError):
        runner.run(read, {"path": "src/../../other-project/x"}, analysis_only=False, dry_run=False)
    with pytest.raises(ToolStageError, match="no file"):
        runner.run(read, {"path": "missing.txt"}, analysis_only=False, dry_run=False)
    written = runner.run(
        tool(builtin="filesystem.write_file"), {"path": "notes.md", "content": "x"}, analysis_only=False, dry_run=False
    )
    assert written.mutations == [{"path": "notes.md", "change": "written", "bytes": 1}]
    listed = runner.run(tool(builtin="filesystem.list"), {}, analysis_only=False, dry_run=False)
    assert listed.result == ["notes.md", "src/app.py"]


def test_safe_modes(workspace: Workspace) -> None:
    runner = ToolRunner(workspace)
    write = tool(builtin="filesystem.write_file")
    with pytest.raises(SecurityStageError, match="analysis_only"):
        runner.run(write, {"path": "x.md", "content": "x"}, analysis_only=True, dry_run=False)
    dry = runner.run(write, {"path": "x.md", "content": "x"}, analysis_only=False, dry_run=True)
    assert dry.dry_run is True
    assert dry.mutations[0]["path"] == "x.md"
    assert "x.md" not in workspace.files()
    read = tool(builtin="filesystem.read_file")
    assert runner.run(read, {"path": "src/app.py"}, analysis_only=True, dry_run=False).result  # reads still run


def test_command_run_is_allowlisted_capped_and_synced_back(workspace: Workspace) -> None:
    runner = ToolRunner(workspace)
    run = tool(builtin="command.run", allowlist=["python3"], max_output_bytes=10)
    with pytest.raises(SecurityStageError, match="allowlist"):
        runner.run(run, {"command": ["bash", "-c", "id"]}, analysis_only=False, dry_run=False)
    with pytest.raises(SecurityStageError, match="allowlist"):
        runner.run(run, {"command": ["/usr/bin/python3", "-V"]}, analysis_only=False, dry_run=False)
    script = "import pathlib; pathlib.Path('out.txt').write_text('x' * 5); print('y' * 50)"
    outcome = runner.run(run, {"command": ["python3", "-c", script]}, analysis_only=False, dry_run=False)
    assert outcome.result["stdout"] == "y" * 10
    assert outcome.result["truncated"] is True
    assert outcome.mutations == [{"path": "out.txt", "change": "added"}]
    assert workspace.read("out.txt") == "xxxxx"
    with pytest.raises(ToolStageError, match="exited with 3"):
        runner.run(run, {"command": ["python3", "-c", "raise SystemExit(3)"]}, analysis_only=False, dry_run=False)


def test_a_symlink_out_of_the_workspace_refuses_the_whole_command(workspace: Workspace) -> None:
    runner = ToolRunner(workspace)
    run = tool(builtin="command.run", allowlist=["python3"])
    escape = "import os; open('kept.txt', 'w').write('x'); os.symlink('/etc/passwd', 'leak')"
    with pytest.raises(SecurityStageError, match="symlink out of the workspace"):
        runner.run(run, {"command": ["python3", "-c", escape]}, analysis_only=False, dry_run=False)
    assert "kept.txt" not in workspace.files()  # nothing was synced


def test_bad_arguments_and_undeclared_handlers_are_configuration_errors(workspace: Workspace) -> None:
    runner = ToolRunner(workspace)
    with pytest.raises(ConfigStageError, match="do not match its schema"):
        runner.run(tool(builtin="filesystem.read_file"), {"file": "x"}, analysis_only=False, dry_run=False)
    custom = tool(kind="custom", handler="tests.fixtures.pipeline_plugins:missing", input_schema={"type": "object"})
    with pytest.raises(ConfigStageError, match="cannot load"):
        runner.run(custom, {}, analysis_only=False, dry_run=False)


def test_a_custom_tool_failure_is_a_tool_error(workspace: Workspace, tmp_path: Path) -> None:
    flaky = tool(kind="custom", handler="tests.fixtures.pipeline_plugins:flaky_tool", input_schema={"type": "object"})
    arguments = {"counter_file": str(tmp_path / "n"), "fail_times": 1}
    with pytest.raises(ToolStageError, match="flaky failure 1"):
        ToolRunner(workspace).run(flaky, arguments, analysis_only=False, dry_run=False)
    assert ToolRunner(workspace).run(flaky, arguments, analysis_only=False, dry_run=False).result == {
        "ok": True,
        "calls": 2,
    }


# ---- plugins and telemetry ---------------------------------------------------------------------------


def plugins(*refs: dict[str, Any]) -> Plugins:
    return Plugins(PluginsManifest.model_validate({"plugins": list(refs)}))


def test_plugins_run_in_declared_order_and_a_broken_one_fails_nothing() -> None:
    pipeline_plugins.CALLS.clear()
    chain = plugins(
        {"name": "first", "import": "tests.fixtures.pipeline_plugins:Recorder", "config": {"name": "first"}},
        {"name": "broken", "import": "tests.fixtures.pipeline_plugins:Broken"},
        {"name": "second", "import": "tests.fixtures.pipeline_plugins:Recorder", "config": {"name": "second"}},
    )
    chain.call("before_stage", {"stage": "a"})
    chain.call("after_stage", {"stage": "a"})
    assert pipeline_plugins.CALLS == [
        "first:before_stage",
        "second:before_stage",
        "first:after_stage",
        "second:after_stage",
    ]


def test_a_plugin_may_veto_a_tool_call_but_not_change_it(workspace: Workspace) -> None:
    chain = plugins(
        {"name": "broken", "import": "tests.fixtures.pipeline_plugins:Broken"},
        {
            "name": "freeze",
            "import": "tests.fixtures.pipeline_plugins:NoWrites",
            "config": {"reason": "release freeze"},
        },
    )
    runner = ToolRunner(workspace, chain.veto)
    with pytest.raises(SecurityStageError, match="freeze: release freeze"):
        runner.run(
            tool(builtin="filesystem.write_file"), {"path": "a", "content": "b"}, analysis_only=False, dry_run=False
        )
    read = runner.run(tool(builtin="filesystem.read_file"), {"path": "src/app.py"}, analysis_only=False, dry_run=False)
    assert read.result == "print('hi')\n"


def test_telemetry_redacts_payloads_and_survives_a_failing_sink(tmp_path: Path) -> None:
    sink = tmp_path / "events.jsonl"
    telemetry = Telemetry(
        PluginsManifest.model_validate({"telemetry": {"sinks": ["jsonl:/nonexistent/dir/x.jsonl", f"jsonl:{sink}"]}})
    )
    data = telemetry.prepare({"stage": "a", "prompt": "secret prompt", "prompt_tokens": 5})
    telemetry.emit("t1", "LLM_CALLED", data)
    line = json.loads(sink.read_text())
    assert line["data"]["prompt"]["redacted"] is True
    assert line["data"]["prompt_tokens"] == 5
    assert "secret prompt" not in sink.read_text()
    assert redact({"nested": [{"stdout": "x"}]})["nested"][0]["stdout"]["length"] == 1
