"""Manifests: the example loads and compiles; every schema, cross-file and DAG rule is reported with
its file, JSON path and rule; the committed JSON Schemas are in step with the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from lighthouse.pipelines.bundle import load
from lighthouse.pipelines.compiler import CompileError, compile_pipeline, error_name
from lighthouse.pipelines.manifests import MANIFEST_FILES, ConfigInvalid
from lighthouse_tools.manifest_schemas import path_of, render

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "code-review"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:stage"


def example_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in EXAMPLE.glob("*.yaml")}


def minimal(
    nodes: list[dict[str, Any]], edges: list[dict[str, Any]], start: str = "a", **pipeline: Any
) -> dict[str, str]:
    agents = {"agents": [{"id": "bot", "provider": "scripted", "model": "m", "responses": ['{"route": "x"}']}]}
    tools = {"tools": [{"id": "ls", "builtin": "command.run", "allowlist": ["ls"]}]}
    workflow = {"workflows": [{"name": "w", "start": start, "nodes": nodes, "edges": edges}]}
    pipelines = {"pipelines": [{"name": "p", "workflow": "w", **pipeline}]}
    return {
        "agents.yaml": yaml.safe_dump(agents),
        "tools.yaml": yaml.safe_dump(tools),
        "workflow.yaml": yaml.safe_dump(workflow),
        "pipelines.yaml": yaml.safe_dump(pipelines),
    }


def agent(node_id: str) -> dict[str, Any]:
    return {"id": node_id, "type": "agent", "agent": "bot"}


def problems(files: dict[str, str]) -> list[dict[str, str]]:
    with pytest.raises(ConfigInvalid) as refused:
        load(files)
    assert refused.value.code == "CONFIG_ERROR"
    found: list[dict[str, str]] = refused.value.details["problems"]
    for item in found:
        assert set(item) == {"file", "path", "rule", "message"}
    return found


def rules(files: dict[str, str]) -> set[str]:
    return {p["rule"] for p in problems(files)}


def test_the_example_loads_and_compiles_to_a_parallel_a_merge_and_a_choice() -> None:
    bundle = load(example_files())
    pipeline = bundle.pipeline("code-review")
    definition = compile_pipeline(pipeline, bundle.workflow(pipeline.workflow), ARN)
    body = definition["States"]["Run"]["Branches"][0]["States"]
    assert body["checks"]["Next"] == "checks__fork"
    fork = body["checks__fork"]
    assert fork["Type"] == "Parallel"
    assert [b["StartAt"] for b in fork["Branches"]] == ["security", "style"]
    assert fork["Next"] == "reviews"
    assert body["reviews"]["Parameters"]["Payload"]["action"] == "merge"
    assert body["verdict__route"]["Type"] == "Choice"
    assert {c["StringEquals"]: c["Next"] for c in body["verdict__route"]["Choices"]} == {
        "approve": "approve_note",
        "request_changes": "changes_note",
    }
    assert body["summarize"]["Retry"][0]["ErrorEquals"] == [error_name("llm"), error_name("tool")]
    assert definition["States"]["Run"]["Catch"][0]["Next"] == "RecordFailure"


@pytest.mark.parametrize(
    ("nodes", "edges", "rule"),
    [
        ([agent("a"), agent("b")], [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}], "no_cycles"),
        (
            [agent("a"), agent("b"), agent("c")],
            [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "b"}],
            "reaches_end",
        ),
        ([agent("a"), agent("b")], [], "reachable"),
        ([agent("a")], [{"from": "a", "to": "ghost"}], "edge_target_exists"),
        (
            [agent("a"), agent("b")],
            [{"from": "a", "to": "b", "type": "conditional", "when": "x"}],
            "conditional_from_decision",
        ),
        (
            [agent("a"), {"id": "m", "type": "merge"}, agent("z")],
            [{"from": "a", "to": "m"}, {"from": "m", "to": "z"}],
            "merge_inbound",
        ),
        (
            [agent("a"), agent("b"), agent("c"), {"id": "m", "type": "merge"}, agent("y"), agent("z")],
            [
                {"from": "a", "to": "b"},
                {"from": "a", "to": "c"},
                {"from": "b", "to": "m"},
                {"from": "c", "to": "m"},
                {"from": "m", "to": "y"},
                {"from": "m", "to": "z"},
            ],
            "merge_outbound",
        ),
        ([{"id": "a", "type": "decision", "agent": "bot"}, agent("b")], [{"from": "a", "to": "b"}], "decision_routes"),
        ([{"id": "a", "type": "agent", "agent": "nobody"}], [], "agent_exists"),
        ([{"id": "a", "type": "tool", "tool": "rm"}], [], "tool_exists"),
        ([{"id": "a", "type": "robot"}], [], "enum"),
    ],
)
def test_each_workflow_rule_names_itself(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], rule: str) -> None:
    assert rule in rules(minimal(nodes, edges))


def test_a_problem_names_the_file_and_the_json_path() -> None:
    found = problems(minimal([agent("a")], [{"from": "a", "to": "ghost"}]))
    assert found == [
        {
            "file": "workflow.yaml",
            "path": "$.workflows[0].edges[0].to",
            "rule": "edge_target_exists",
            "message": "no node 'ghost'",
        }
    ]
    found = problems(minimal([{"id": "a", "type": "robot"}], []))
    assert found[0]["file"] == "workflow.yaml"
    assert found[0]["path"] == "$.workflows[0].nodes[0].type"


def test_a_missing_start_and_unknown_files_are_problems() -> None:
    assert "start_exists" in rules(minimal([agent("a")], [], start="nope"))
    assert "known_file" in rules({**minimal([agent("a")], []), "extra.yaml": "x: 1"})
    incomplete = minimal([agent("a")], [])
    del incomplete["tools.yaml"]
    assert "required_file" in rules(incomplete)


def test_broken_yaml_and_cross_file_references_are_problems() -> None:
    assert "yaml" in rules({**minimal([agent("a")], []), "memory.yaml": "stores: [unclosed"})
    files = minimal([agent("a")], [], retry={"ghost": {"max_attempts": 1}})
    assert "node_exists" in rules(files)
    files["plugins.yaml"] = yaml.safe_dump({"plugins": [{"name": "x", "import": "no.such.module:Thing"}]})
    assert "importable" in rules(files)


def test_branches_that_never_meet_at_a_merge_cannot_compile() -> None:
    bundle = load(minimal([agent("a"), agent("b"), agent("c")], [{"from": "a", "to": "b"}, {"from": "a", "to": "c"}]))
    pipeline = bundle.pipeline("p")
    with pytest.raises(CompileError) as refused:
        compile_pipeline(pipeline, bundle.workflow("w"), ARN)
    assert refused.value.problem["rule"] == "fork_merges"


def test_error_and_fallback_edges_and_the_fallback_matrix_become_catches() -> None:
    nodes = [agent("a"), agent("b"), agent("rescue"), agent("report")]
    edges = [
        {"from": "a", "to": "b"},
        {"from": "a", "to": "rescue", "type": "fallback", "categories": ["json"]},
        {"from": "b", "to": "report", "type": "error"},
    ]
    files = minimal(nodes, edges, fallbacks=[{"category": "llm", "node_type": "agent", "fallback": "rescue"}])
    bundle = load(files)
    states = compile_pipeline(bundle.pipeline("p"), bundle.workflow("w"), ARN)["States"]["Run"]["Branches"][0]["States"]
    assert [(c["ErrorEquals"], c["Next"]) for c in states["a"]["Catch"]] == [
        (["JsonStageError"], "rescue"),
        (["LlmStageError"], "rescue"),
    ]
    assert [(c["ErrorEquals"], c["Next"]) for c in states["b"]["Catch"]] == [
        (["LlmStageError"], "rescue"),
        (["States.ALL"], "report"),
    ]


@pytest.mark.parametrize("file", MANIFEST_FILES)
def test_the_committed_json_schemas_are_in_step_with_the_models(file: str) -> None:
    assert path_of(file).read_text() == render(file), "run `lighthouse pipelines schemas`"
    assert json.loads(render(file))["$schema"].endswith("2020-12/schema")
