"""The prompt of an agent stage: the agent's system text, the task, the context the stage's memory
profile assembled, the stage's input (and the previous stage's error, on a fallback edge), and the
schema the answer must match."""

from __future__ import annotations

import json
from typing import Any

from lighthouse.pipelines.logic import summary
from lighthouse.pipelines.manifests import Agent, Node
from lighthouse.pipelines.models import TaskState
from lighthouse.providers import Message


def prompt(
    state: TaskState, agent: Agent, node: Node, stage_input: Any, previous: dict[str, Any], context: list[str]
) -> list[Message]:
    system = (
        f"{agent.system}\n\nYou are stage '{node.id}' of the pipeline '{state.pipeline}'. {node.instructions}".strip()
    )
    parts = [f"Task: {summary(state.input)}"]
    if context:
        parts.append("Context:\n" + "\n".join(context))
    source = previous.get("node") if isinstance(previous, dict) else None
    parts.append(f"Input ({'from ' + source if source else 'the task input'}):\n{summary(stage_input)}")
    if isinstance(previous, dict) and previous.get("error"):
        parts.append(f"The previous stage failed: {summary(previous['error'])}")
    parts.append(
        "Answer with one JSON value and nothing else, valid against this JSON Schema:\n"
        + json.dumps(agent.output_schema, sort_keys=True)
    )
    return [Message("system", system), Message("user", "\n\n".join(parts))]
