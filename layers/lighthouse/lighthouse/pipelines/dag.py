"""Rules across manifests and over each workflow graph. Each broken rule is one problem
{file, path, rule, message}; nothing here raises."""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Iterable, Mapping

from lighthouse import jsonschemas
from lighthouse.errors import ValidationFailed
from lighthouse.pipelines.manifests import BUILTIN_TOOLS, ConfigBundle, Tool, Workflow, problem

FLOW_EDGES = ("normal", "conditional")


def check_bundle(bundle: ConfigBundle) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    problems += _duplicates("agents.yaml", "agents", [a.id for a in bundle.agents.agents])
    problems += _duplicates("tools.yaml", "tools", [t.id for t in bundle.tools.tools])
    problems += _duplicates("workflow.yaml", "workflows", [w.name for w in bundle.workflows.workflows])
    problems += _duplicates("pipelines.yaml", "pipelines", [p.name for p in bundle.pipelines.pipelines])
    tools = {t.id for t in bundle.tools.tools} | set(BUILTIN_TOOLS)
    profiles = {p.name for p in bundle.memory.profiles}
    stores = {s.name for s in bundle.memory.stores}
    agents = {a.id for a in bundle.agents.agents}

    for i, agent in enumerate(bundle.agents.agents):
        where = f"$.agents[{i}]"
        for j, tool in enumerate(agent.tools):
            if tool not in tools:
                problems.append(problem("agents.yaml", f"{where}.tools[{j}]", "tool_exists", f"no tool {tool!r}"))
        if agent.context_profile and agent.context_profile not in profiles:
            problems.append(
                problem(
                    "agents.yaml", f"{where}.context_profile", "profile_exists", f"no profile {agent.context_profile!r}"
                )
            )
        try:
            jsonschemas.compiled(agent.output_schema, "output_schema")
        except ValidationFailed as error:
            problems.append(problem("agents.yaml", f"{where}.output_schema", "json_schema", error.message))
        if agent.provider == "scripted" and not agent.responses:
            problems.append(
                problem("agents.yaml", f"{where}.responses", "scripted_responses", "scripted needs responses")
            )
    for i, declared in enumerate(bundle.tools.tools):
        where = f"$.tools[{i}]"
        problems += _check_tool(declared, where)
    for i, profile in enumerate(bundle.memory.profiles):
        for j, store in enumerate(profile.stores):
            if store not in stores:
                problems.append(
                    problem("memory.yaml", f"$.profiles[{i}].stores[{j}]", "store_exists", f"no store {store!r}")
                )
    for i, plugin in enumerate(bundle.plugins.plugins):
        if (message := _importable(plugin.import_path)) is not None:
            problems.append(problem("plugins.yaml", f"$.plugins[{i}].import", "importable", message))
    for i, workflow in enumerate(bundle.workflows.workflows):
        # Nodes the fallback matrix sends failures to are entered from any node of a type.
        matrix_targets = {
            f.fallback for p in bundle.pipelines.pipelines if p.workflow == workflow.name for f in p.fallbacks
        }
        problems += check_workflow(workflow, f"$.workflows[{i}]", agents, tools, matrix_targets)
    workflows = {w.name: w for w in bundle.workflows.workflows}
    for i, pipeline in enumerate(bundle.pipelines.pipelines):
        where = f"$.pipelines[{i}]"
        used = workflows.get(pipeline.workflow)
        if used is None:
            problems.append(
                problem("pipelines.yaml", f"{where}.workflow", "workflow_exists", f"no {pipeline.workflow!r}")
            )
            continue
        nodes = {n.id: n for n in used.nodes}
        for key in pipeline.retry:
            if key != "*" and key not in nodes:
                problems.append(problem("pipelines.yaml", f"{where}.retry.{key}", "node_exists", f"no node {key!r}"))
        for j, fallback in enumerate(pipeline.fallbacks):
            if fallback.fallback not in nodes:
                problems.append(
                    problem(
                        "pipelines.yaml",
                        f"{where}.fallbacks[{j}].fallback",
                        "node_exists",
                        f"no node {fallback.fallback!r}",
                    )
                )
    return problems


def _check_tool(tool: Tool, where: str) -> list[dict[str, str]]:
    problems = []
    if tool.kind == "builtin" and (tool.builtin or tool.id) not in BUILTIN_TOOLS:
        problems.append(problem("tools.yaml", f"{where}.builtin", "builtin_exists", f"builtins: {BUILTIN_TOOLS}"))
    if tool.kind == "custom":
        if not tool.handler or tool.input_schema is None:
            problems.append(
                problem("tools.yaml", where, "custom_tool", "a custom tool needs `handler` and `input_schema`")
            )
        elif (message := _importable(tool.handler)) is not None:
            problems.append(problem("tools.yaml", f"{where}.handler", "importable", message))
        else:
            try:
                jsonschemas.compiled(tool.input_schema, "input_schema")
            except ValidationFailed as error:
                problems.append(problem("tools.yaml", f"{where}.input_schema", "json_schema", error.message))
    if tool.filesystem_root.startswith("/") or ".." in tool.filesystem_root.split("/"):
        problems.append(
            problem(
                "tools.yaml", f"{where}.filesystem_root", "inside_workspace", "a relative path inside the workspace"
            )
        )
    return problems


def check_workflow(
    workflow: Workflow, where: str, agents: set[str], tools: set[str], extra_roots: set[str] | None = None
) -> list[dict[str, str]]:
    file = "workflow.yaml"
    problems = _duplicates(file, f"{where.removeprefix('$.')}.nodes", [n.id for n in workflow.nodes])
    nodes = {n.id: n for n in workflow.nodes}
    if workflow.start not in nodes:
        problems.append(problem(file, f"{where}.start", "start_exists", f"no node {workflow.start!r}"))
    for i, node in enumerate(workflow.nodes):
        at = f"{where}.nodes[{i}]"
        if node.type in ("agent", "decision") and node.agent not in agents:
            problems.append(
                problem(file, f"{at}.agent", "agent_exists", f"{node.type} node {node.id!r} needs a known agent")
            )
        if node.type == "tool" and not node.plan_from_input and node.tool not in tools:
            problems.append(problem(file, f"{at}.tool", "tool_exists", f"tool node {node.id!r} needs a known tool"))
    valid_edges = []
    for i, edge in enumerate(workflow.edges):
        at = f"{where}.edges[{i}]"
        for end, name in ((edge.source, "from"), (edge.target, "to")):
            if end not in nodes:
                problems.append(problem(file, f"{at}.{name}", "edge_target_exists", f"no node {end!r}"))
        if edge.source not in nodes or edge.target not in nodes:
            continue
        valid_edges.append(edge)
        source = nodes[edge.source]
        if edge.type == "conditional":
            if source.type != "decision":
                problems.append(
                    problem(
                        file,
                        at,
                        "conditional_from_decision",
                        f"conditional edges leave decision nodes, not {source.type}",
                    )
                )
            if not edge.when:
                problems.append(problem(file, f"{at}.when", "conditional_when", "a conditional edge needs `when`"))
        if edge.type in ("error", "fallback") and source.type == "merge":
            problems.append(
                problem(file, at, "handler_source", "error and fallback edges leave agent, tool or decision nodes")
            )
    if problems:
        return problems

    flow = [e for e in valid_edges if e.type in FLOW_EDGES]
    successors: dict[str, list[str]] = {n: [] for n in nodes}
    for edge in valid_edges:
        successors[edge.source].append(edge.target)
    cycle = _cycle(nodes, successors)
    if cycle:
        problems.append(problem(file, f"{where}.edges", "no_cycles", f"cycle: {' -> '.join(cycle)}"))
    reachable = set().union(
        *(reach(root, successors) for root in {workflow.start, *(extra_roots or set())} & set(nodes))
    )
    for i, node in enumerate(workflow.nodes):
        if node.id not in reachable:
            problems.append(
                problem(
                    file, f"{where}.nodes[{i}]", "reachable", f"{node.id!r} is not reachable from {workflow.start!r}"
                )
            )
    ends = {n for n in nodes if not any(e.source == n for e in flow)}
    for i, node in enumerate(workflow.nodes):
        if not (reach(node.id, successors) & ends):
            problems.append(problem(file, f"{where}.nodes[{i}]", "reaches_end", f"{node.id!r} cannot reach an end"))
    for i, node in enumerate(workflow.nodes):
        inbound = [e for e in flow if e.target == node.id]
        outbound = [e for e in flow if e.source == node.id]
        if node.type == "merge":
            if len(inbound) < 2:
                problems.append(
                    problem(
                        file,
                        f"{where}.nodes[{i}]",
                        "merge_inbound",
                        f"merge {node.id!r} has {len(inbound)} inbound edges; needs >= 2",
                    )
                )
            if len(outbound) != 1:
                problems.append(
                    problem(
                        file,
                        f"{where}.nodes[{i}]",
                        "merge_outbound",
                        f"merge {node.id!r} has {len(outbound)} outbound edges; needs 1",
                    )
                )
        if node.type == "decision":
            conditional = [e for e in outbound if e.type == "conditional"]
            normal = [e for e in outbound if e.type == "normal"]
            if not conditional:
                problems.append(
                    problem(
                        file, f"{where}.nodes[{i}]", "decision_routes", f"decision {node.id!r} has no conditional edge"
                    )
                )
            if len(normal) > 1:
                problems.append(
                    problem(
                        file,
                        f"{where}.nodes[{i}]",
                        "decision_default",
                        "a decision has at most one normal (default) edge",
                    )
                )
    return problems


def _duplicates(file: str, path: str, names: Iterable[str]) -> list[dict[str, str]]:
    return [
        problem(file, f"$.{path}", "unique", f"{name!r} is declared {count} times")
        for name, count in Counter(names).items()
        if count > 1
    ]


def _importable(path: str) -> str | None:
    module, _, attribute = path.partition(":")
    try:
        loaded = importlib.import_module(module)
    except Exception as error:
        return f"cannot import {module}: {type(error).__name__}: {error}"
    return None if hasattr(loaded, attribute) else f"{module} has no {attribute!r}"


def _cycle(nodes: Mapping[str, object], successors: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for following in successors[node]:
            if state.get(following) == 1:
                return [*stack[stack.index(following) :], following]
            if following not in state and (found := visit(following)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in nodes:
        if node not in state and (found := visit(node)):
            return found
    return None


def reach(start: str, successors: Mapping[str, list[str]]) -> set[str]:
    """Every node reachable from `start` (itself included)."""
    seen, frontier = {start}, [start]
    while frontier:
        for following in successors.get(frontier.pop(), []):
            if following not in seen:
                seen.add(following)
                frontier.append(following)
    return seen
