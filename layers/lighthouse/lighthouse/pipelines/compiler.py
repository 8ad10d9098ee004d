"""Workflow DAG -> Amazon States Language.

agent / tool node -> Task invoking the stage runner (Retry from the pipeline's policy);
decision -> that Task, then a Choice on the route it returned; a node with several normal edges
-> Parallel, one branch per edge, each running up to the merge they meet at; merge -> a Task that
aggregates the branches' outputs keyed by source node; error and fallback edges (and the pipeline's
fallback matrix) -> Catch. The whole workflow runs inside a one-branch Parallel so that any failure
is recorded on the task before the execution fails.

The state carries only references (`$.last` = {node, route}); outputs live in the task's event stream.
"""

from __future__ import annotations

from typing import Any

from lighthouse.pipelines.dag import reach
from lighthouse.pipelines.manifests import CATEGORIES, Category, Node, Pipeline, Workflow, problem

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
TRANSIENT = ["Lambda.ServiceException", "Lambda.TooManyRequestsException", "Lambda.SdkClientException"]


def error_name(category: Category) -> str:
    """The Lambda errorType of a stage failing in `category` (what Retry and Catch match)."""
    return f"{category.capitalize()}StageError"


class CompileError(Exception):
    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem("workflow.yaml", "$.workflows", rule, message)


class _Compiler:
    def __init__(self, pipeline: Pipeline, workflow: Workflow, stage_runner_arn: str) -> None:
        self.pipeline = pipeline
        self.workflow = workflow
        self.arn = stage_runner_arn
        self.nodes = {n.id: n for n in workflow.nodes}
        self.flow: dict[str, list[tuple[str, str, str | None]]] = {n: [] for n in self.nodes}
        self.handlers: dict[str, list[tuple[str, str, list[Category]]]] = {n: [] for n in self.nodes}
        for edge in workflow.edges:
            if edge.type in ("normal", "conditional"):
                self.flow[edge.source].append((edge.target, edge.type, edge.when))
            else:
                self.handlers[edge.source].append((edge.target, edge.type, list(edge.categories)))
        self.scope_of: dict[str, int] = {}
        self.scopes = 0

    def compile(self) -> dict[str, Any]:
        body = self.scope(self.workflow.start, stop_at=None)
        return {
            "Comment": f"Pipeline {self.pipeline.name}: workflow {self.workflow.name}, compiled by Lighthouse",
            "StartAt": "Run",
            "States": {
                "Run": {
                    "Type": "Parallel",
                    "Branches": [body],
                    "ResultPath": "$.result",
                    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "RecordFailure"}],
                    "Next": "RecordCompletion",
                },
                "RecordCompletion": {
                    **self._invoke({"action": "complete", "task_id.$": "$.task_id", "result.$": "$.result"}, end=True),
                    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "RecordFailure"}],
                },
                "RecordFailure": {
                    **self._invoke({"action": "fail", "task_id.$": "$.task_id", "failure.$": "$.failure"}, end=False),
                    "Next": "Failed",
                },
                "Failed": {"Type": "Fail", "Error": "TaskFailed", "Cause": "a stage failed; see the task's events"},
            },
        }

    # ---- scopes ---------------------------------------------------------------------------------

    def scope(self, start: str, stop_at: str | None) -> dict[str, Any]:
        self.scopes += 1
        scope_id = self.scopes
        states: dict[str, Any] = {}
        frontier = [start]
        while frontier:
            node_id = frontier.pop()
            if node_id in states:
                continue
            owner = self.scope_of.setdefault(node_id, scope_id)
            if owner != scope_id:
                raise CompileError(
                    "shared_across_branches",
                    f"node {node_id!r} is reached from more than one parallel branch (or from inside and outside one)",
                )
            frontier += self.node_states(self.nodes[node_id], states, stop_at)
        return {"StartAt": start, "States": states}

    def node_states(self, node: Node, states: dict[str, Any], stop_at: str | None) -> list[str]:
        """Add the states of one node to its scope; return the nodes it leads to in the same scope."""
        following: list[str] = []
        task = self._task_state(node, following)
        states[node.id] = task
        normal = [target for target, kind, _ in self.flow[node.id] if kind == "normal"]
        if node.type == "decision":
            self._route(node, task, normal, states, stop_at, following)
        elif not normal:
            task["End"] = True
        elif len(normal) == 1:
            task["Next"] = self._next_state(normal[0], stop_at, states, following)
        else:
            self._fork(node, task, normal, states, stop_at, following)
        return following

    def _task_state(self, node: Node, following: list[str]) -> dict[str, Any]:
        """The Task state that runs the node (or merges its branches), with its retries and catches."""
        if node.type == "merge":
            merging = {"action": "merge", "task_id.$": "$.task_id", "stage": node.id, "branches.$": "$.branches.items"}
            task = self._invoke(merging, end=False)
        else:
            running = {"action": "run_stage", "task_id.$": "$.task_id", "stage": node.id, "previous.$": "$.last"}
            task = self._invoke(running, end=False)
            task["Retry"] = self._retry(node)
            catches = self._catches(node)
            if catches:
                task["Catch"] = [catch for catch, _ in catches]
                following += [target for _, target in catches]
        task["ResultSelector"] = {"node": node.id, "route.$": "$.Payload.route"}
        task["ResultPath"] = "$.last"
        return task

    def _route(
        self,
        node: Node,
        task: dict[str, Any],
        normal: list[str],
        states: dict[str, Any],
        stop_at: str | None,
        following: list[str],
    ) -> None:
        """A decision: a Choice on the route the stage returned; the normal edge is the default."""
        # The stage runner always returns a string route ("" when the output names none).
        choices = []
        for target, kind, when in self.flow[node.id]:
            if kind == "conditional" and when is not None:
                step = self._next_state(target, stop_at, states, following)
                choices.append({"Variable": "$.last.route", "StringEquals": when, "Next": step})
        default = self._next_state(normal[0], stop_at, states, following) if normal else f"{node.id}__unrouted"
        if not normal:
            states[f"{node.id}__unrouted"] = {
                "Type": "Fail",
                "Error": error_name("routing"),
                "Cause": f"decision {node.id} returned a route no edge takes",
            }
        task["Next"] = f"{node.id}__route"
        states[f"{node.id}__route"] = {"Type": "Choice", "Choices": choices, "Default": default}

    def _fork(
        self,
        node: Node,
        task: dict[str, Any],
        normal: list[str],
        states: dict[str, Any],
        stop_at: str | None,
        following: list[str],
    ) -> None:
        """Several normal edges: a Parallel state whose branches meet at their merge node."""
        merge = self._merge_of(node.id, normal)
        fork = f"{node.id}__fork"
        task["Next"] = fork
        states[fork] = {
            "Type": "Parallel",
            "Branches": [self.scope(target, stop_at=merge) for target in normal],
            "ResultSelector": {"items.$": "$[*].last"},
            "ResultPath": "$.branches",
            "Next": self._next_state(merge, stop_at, states, following),
        }

    def _next_state(self, target: str, stop_at: str | None, states: dict[str, Any], following: list[str]) -> str:
        """The state a transition to `target` goes to: the end of this branch if `target` is its merge."""
        if target == stop_at:
            end = "__branch_end"
            states.setdefault(end, {"Type": "Pass", "End": True})
            return end
        following.append(target)
        return target

    def _merge_of(self, fork: str, branches: list[str]) -> str:
        reach = [self._reach(branch) for branch in branches]
        common = set.intersection(*reach)
        merges = [n for n in common if self.nodes[n].type == "merge"]
        nearest = [m for m in merges if not any(m != other and m in self._reach(other) for other in merges)]
        if len(nearest) != 1:
            raise CompileError(
                "fork_merges",
                f"the branches leaving {fork!r} ({', '.join(branches)}) must meet at exactly one merge node",
            )
        return nearest[0]

    def _reach(self, start: str) -> set[str]:
        return reach(start, {node: [target for target, _, _ in edges] for node, edges in self.flow.items()})

    # ---- states ---------------------------------------------------------------------------------

    def _invoke(self, payload: dict[str, Any], end: bool) -> dict[str, Any]:
        state: dict[str, Any] = {
            "Type": "Task",
            "Resource": LAMBDA_INVOKE,
            "Parameters": {"FunctionName": self.arn, "Payload": {"pipeline": self.pipeline.name, **payload}},
        }
        if end:
            state["End"] = True
        state["Retry"] = [{"ErrorEquals": TRANSIENT, "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2}]
        return state

    def _retry(self, node: Node) -> list[dict[str, Any]]:
        retries = [{"ErrorEquals": TRANSIENT, "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2}]
        policy = self.pipeline.retry.get(node.id) or self.pipeline.retry.get("*")
        if policy and policy.max_attempts > 0:
            retries.insert(
                0,
                {
                    "ErrorEquals": [error_name(c) for c in policy.categories],
                    "IntervalSeconds": policy.interval_seconds,
                    "MaxAttempts": policy.max_attempts,
                    "BackoffRate": policy.backoff_rate,
                },
            )
        return retries

    def _catches(self, node: Node) -> list[tuple[dict[str, Any], str]]:
        catches: list[tuple[dict[str, Any], str]] = []
        for target, kind, on in self.handlers[node.id]:
            if kind == "fallback":
                errors = [error_name(c) for c in (on or CATEGORIES)]
                catches.append(({"ErrorEquals": errors, "ResultPath": "$.last.error", "Next": target}, target))
        for fallback in self.pipeline.fallbacks:
            if fallback.node_type == node.type and fallback.fallback != node.id:
                catches.append(
                    (
                        {
                            "ErrorEquals": [error_name(fallback.category)],
                            "ResultPath": "$.last.error",
                            "Next": fallback.fallback,
                        },
                        fallback.fallback,
                    )
                )
        for target, kind, _ in self.handlers[node.id]:
            if kind == "error":
                catches.append(({"ErrorEquals": ["States.ALL"], "ResultPath": "$.last.error", "Next": target}, target))
        return catches


def compile_pipeline(pipeline: Pipeline, workflow: Workflow, stage_runner_arn: str) -> dict[str, Any]:
    """The state machine definition; CompileError when the graph has a shape ASL cannot express."""
    return _Compiler(pipeline, workflow, stage_runner_arn).compile()
