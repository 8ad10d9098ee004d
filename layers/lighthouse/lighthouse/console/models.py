"""What the console's routes accept and answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from lighthouse.agents.models import Role

StateStatus = Literal["not_run", "running", "waiting", "succeeded", "failed", "caught"]
ExecutionKind = Literal[
    "elicitation", "expert_round", "fleet_command", "rollout", "run", "pipeline_task", "presence", "other"
]


class BrowserSession(BaseModel):
    """A signed-in browser: who, until when, and the value every request must echo in X-Lighthouse-CSRF.

    The bearer token itself travels only in the HttpOnly cookie; it is never in a body a script reads.
    """

    agent_id: str
    role: Role
    expires_at: int
    csrf: str


class SignedOut(BaseModel):
    signed_out: bool = True


class DomainLink(BaseModel):
    """The Lighthouse object an execution belongs to: its id, the API path and the console page."""

    kind: ExecutionKind
    object_id: str
    api_path: str | None
    console_path: str | None


class ExecutionSummary(BaseModel):
    execution_arn: str
    name: str
    state_machine: str
    status: str
    started_at: float
    stopped_at: float | None = None
    link: DomainLink


class ExecutionPage(BaseModel):
    executions: list[ExecutionSummary]
    truncated: bool


class GraphNode(BaseModel):
    id: str
    type: str
    parent: str | None = None
    status: StateStatus = "not_run"
    waits_for_task_token: bool = False
    input: Any = None
    output: Any = None
    error: str | None = None


class GraphEdge(BaseModel):
    source: str
    target: str
    label: str = ""


class HistoryEntry(BaseModel):
    id: int
    type: str
    at: float
    state: str | None = None
    detail: Any = None


class ExecutionDetail(BaseModel):
    execution: ExecutionSummary
    start_at: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    history: list[HistoryEntry]
    input: Any = None
    output: Any = None
    error: str | None = None


class Figure(BaseModel):
    """One figure the overview shows; `alarm` names the template alarm that watches it on AWS."""

    name: str
    value: float | int | None
    unit: str
    alarm: str | None = None
    breaching: bool = False
    source: str


class Overview(BaseModel):
    figures: list[Figure]
    at: float
