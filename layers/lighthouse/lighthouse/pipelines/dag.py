"""Rules across manifests and over each workflow graph. Each broken rule is one problem
{file, path, rule, message}; nothing here raises."""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Iterable, Mapping

from lighthouse import jsonschemas
from lighthouse.errors import ValidationFailed
from lighthouse.pipelines.manifests import (
    BUILTIN_TOOLS,
    Agent,
    ConfigBundle,
    Edge,
    Node,
    Pipeline,
    Tool,
    Workflow,
    problem,
)

FLOW_EDGES = ("normal", "conditional")
WORKFLOW_FILE = "workflow.yaml"


Problems = list[dict[str, str]]


def check_bundle(bundle: ConfigBundle) -> Problems:
    tools = {t.id for t in bundle.tools.tools} | set(BUILTIN_TOOLS)
    profiles = {p.name for p in bundle.memory.profiles}
    problems = _check_unique(bundle)
    for i, agent in enumerate(bundle.agents.agents):
        problems += _check_agent(agent, f"$.agents[{i}]", tools, profiles)
    for i, declared in enumerate(bundle.tools.tools):
        problems += _check_tool(declared, f"$.tools[{i}]")
    problems += _check_memory(bundle)
    problems += _check_plugins(bundle)
    problems += _check_workflows(bundle, tools)
    workflows = {w.name: w for w in bundle.workflows.workflows}
    for i, pipeline in enumerate(bundle.pipelines.pipelines):
        problems += _check_pipeline(pipeline, f"$.pipelines[{i}]", workflows)
    return problems


def _check_unique(bundle: ConfigBundle) -> Problems:
    return [
        *_duplicates("agents.yaml", "agents", [a.id for a in bundle.agents.agents]),
        *_duplicates("tools.yaml", "tools", [t.id for t in bundle.tools.tools]),
        *_duplicates("workflow.yaml", "workflows", [w.name for w in bundle.workflows.workflows]),
        *_duplicates("pipelines.yaml", "pipelines", [p.name for p in bundle.pipelines.pipelines]),
    ]


def _check_plugins(bundle: ConfigBundle) -> Problems:
    problems = []
    for i, plugin in enumerate(bundle.plugins.plugins):
        if (message := _importable(plugin.import_path)) is not None:
            problems.append(problem("plugins.yaml", f"$.plugins[{i}].import", "importable", message))
    return problems


def _check_workflows(bundle: ConfigBundle, tools: set[str]) -> Problems:
    agents = {a.id for a in bundle.agents.agents}
    problems = []
    for i, workflow in enumerate(bundle.workflows.workflows):
        # Nodes the fallback matrix sends failures to are entered from any node of a type.
        pipelines = [p for p in bundle.pipelines.pipelines if p.workflow == workflow.name]
        matrix_targets = {f.fallback for p in pipelines for f in p.fallbacks}
        problems += check_workflow(workflow, f"$.workflows[{i}]", agents, tools, matrix_targets)
    return problems


def _check_agent(agent: Agent, where: str, tools: set[str], profiles: set[str]) -> Problems:
    file = "agents.yaml"
    problems = [
        problem(file, f"{where}.tools[{j}]", "tool_exists", f"no tool {tool!r}")
        for j, tool in enumerate(agent.tools)
        if tool not in tools
    ]
    if agent.context_profile and agent.context_profile not in profiles:
        message = f"no profile {agent.context_profile!r}"
        problems.append(problem(file, f"{where}.context_profile", "profile_exists", message))
    try:
        jsonschemas.compiled(agent.output_schema, "output_schema")
    except ValidationFailed as error:
        problems.append(problem(file, f"{where}.output_schema", "json_schema", error.message))
    if agent.provider == "scripted" and not agent.responses:
        problems.append(problem(file, f"{where}.responses", "scripted_responses", "scripted needs responses"))
    return problems


def _check_memory(bundle: ConfigBundle) -> Problems:
    stores = {s.name for s in bundle.memory.stores}
    return [
        problem("memory.yaml", f"$.profiles[{i}].stores[{j}]", "store_exists", f"no store {store!r}")
        for i, profile in enumerate(bundle.memory.profiles)
        for j, store in enumerate(profile.stores)
        if store not in stores
    ]


def _check_pipeline(pipeline: Pipeline, where: str, workflows: Mapping[str, Workflow]) -> Problems:
    file = "pipelines.yaml"
    used = workflows.get(pipeline.workflow)
    if used is None:
        return [problem(file, f"{where}.workflow", "workflow_exists", f"no {pipeline.workflow!r}")]
    nodes = {n.id for n in used.nodes}
    problems = [
        problem(file, f"{where}.retry.{key}", "node_exists", f"no node {key!r}")
        for key in pipeline.retry
        if key != "*" and key not in nodes
    ]
    problems += [
        problem(file, f"{where}.fallbacks[{j}].fallback", "node_exists", f"no node {fallback.fallback!r}")
        for j, fallback in enumerate(pipeline.fallbacks)
        if fallback.fallback not in nodes
    ]
    return problems


def _check_tool(tool: Tool, where: str) -> Problems:
    problems = []
    if tool.kind == "builtin" and (tool.builtin or tool.id) not in BUILTIN_TOOLS:
        problems.append(problem("tools.yaml", f"{where}.builtin", "builtin_exists", f"builtins: {BUILTIN_TOOLS}"))
    if tool.kind == "custom":
        problems += _check_custom_tool(tool, where)
    if tool.filesystem_root.startswith("/") or ".." in tool.filesystem_root.split("/"):
        message = "a relative path inside the workspace"
        problems.append(problem("tools.yaml", f"{where}.filesystem_root", "inside_workspace", message))
    return problems


def _check_custom_tool(tool: Tool, where: str) -> Problems:
    if not tool.handler or tool.input_schema is None:
        return [problem("tools.yaml", where, "custom_tool", "a custom tool needs `handler` and `input_schema`")]
    if (message := _importable(tool.handler)) is not None:
        return [problem("tools.yaml", f"{where}.handler", "importable", message)]
    try:
        jsonschemas.compiled(tool.input_schema, "input_schema")
    except ValidationFailed as error:
        return [problem("tools.yaml", f"{where}.input_schema", "json_schema", error.message)]
    return []


def check_workflow(
    workflow: Workflow, where: str, agents: set[str], tools: set[str], extra_roots: set[str] | None = None
) -> Problems:
    """The workflow's references first; only a workflow whose references all hold is checked as a
    graph (cycles, reachability, the shape of merges and decisions)."""
    problems = _duplicates(WORKFLOW_FILE, f"{where.removeprefix('$.')}.nodes", [n.id for n in workflow.nodes])
    nodes = {n.id: n for n in workflow.nodes}
    if workflow.start not in nodes:
        problems.append(problem(WORKFLOW_FILE, f"{where}.start", "start_exists", f"no node {workflow.start!r}"))
    for i, node in enumerate(workflow.nodes):
        problems += _check_node_references(node, f"{where}.nodes[{i}]", agents, tools)
    for i, edge in enumerate(workflow.edges):
        problems += _check_edge(edge, f"{where}.edges[{i}]", nodes)
    if problems:
        return problems
    return _check_graph(workflow, where, extra_roots or set())


def _check_node_references(node: Node, at: str, agents: set[str], tools: set[str]) -> Problems:
    if node.type in ("agent", "decision") and node.agent not in agents:
        message = f"{node.type} node {node.id!r} needs a known agent"
        return [problem(WORKFLOW_FILE, f"{at}.agent", "agent_exists", message)]
    if node.type == "tool" and not node.plan_from_input and node.tool not in tools:
        return [problem(WORKFLOW_FILE, f"{at}.tool", "tool_exists", f"tool node {node.id!r} needs a known tool")]
    return []


def _check_edge(edge: Edge, at: str, nodes: Mapping[str, Node]) -> Problems:
    missing = [
        problem(WORKFLOW_FILE, f"{at}.{name}", "edge_target_exists", f"no node {end!r}")
        for end, name in ((edge.source, "from"), (edge.target, "to"))
        if end not in nodes
    ]
    if missing:
        return missing
    source = nodes[edge.source]
    problems = []
    if edge.type == "conditional" and source.type != "decision":
        message = f"conditional edges leave decision nodes, not {source.type}"
        problems.append(problem(WORKFLOW_FILE, at, "conditional_from_decision", message))
    if edge.type == "conditional" and not edge.when:
        problems.append(problem(WORKFLOW_FILE, f"{at}.when", "conditional_when", "a conditional edge needs `when`"))
    if edge.type in ("error", "fallback") and source.type == "merge":
        message = "error and fallback edges leave agent, tool or decision nodes"
        problems.append(problem(WORKFLOW_FILE, at, "handler_source", message))
    return problems


def _check_graph(workflow: Workflow, where: str, extra_roots: set[str]) -> Problems:
    nodes = {n.id: n for n in workflow.nodes}
    flow = [e for e in workflow.edges if e.type in FLOW_EDGES]
    successors: dict[str, list[str]] = {n: [] for n in nodes}
    for edge in workflow.edges:
        successors[edge.source].append(edge.target)
    problems = []
    if cycle := _cycle(nodes, successors):
        problems.append(problem(WORKFLOW_FILE, f"{where}.edges", "no_cycles", f"cycle: {' -> '.join(cycle)}"))
    problems += _check_reach(workflow, where, extra_roots, successors, flow)
    return problems + _check_shapes(workflow, where, flow)


def _check_shapes(workflow: Workflow, where: str, flow: list[Edge]) -> Problems:
    problems = []
    for i, node in enumerate(workflow.nodes):
        inbound = [e for e in flow if e.target == node.id]
        outbound = [e for e in flow if e.source == node.id]
        if node.type == "merge":
            problems += _check_merge(node, f"{where}.nodes[{i}]", inbound, outbound)
        if node.type == "decision":
            problems += _check_decision(node, f"{where}.nodes[{i}]", outbound)
    return problems


def _check_reach(
    workflow: Workflow, where: str, extra_roots: set[str], successors: dict[str, list[str]], flow: list[Edge]
) -> Problems:
    """Every node is reachable from the start (or a fallback target) and can reach an end."""
    roots = {workflow.start, *extra_roots} & set(successors)
    reachable = set().union(*(reach(root, successors) for root in roots))
    ends = {n for n in successors if not any(e.source == n for e in flow)}
    unreachable = [
        problem(WORKFLOW_FILE, f"{where}.nodes[{i}]", "reachable", f"{n.id!r} is not reachable from {workflow.start!r}")
        for i, n in enumerate(workflow.nodes)
        if n.id not in reachable
    ]
    endless = [
        problem(WORKFLOW_FILE, f"{where}.nodes[{i}]", "reaches_end", f"{n.id!r} cannot reach an end")
        for i, n in enumerate(workflow.nodes)
        if not (reach(n.id, successors) & ends)
    ]
    return unreachable + endless


def _check_merge(node: Node, at: str, inbound: list[Edge], outbound: list[Edge]) -> Problems:
    """A merge joins two or more branches into one."""
    problems = []
    if len(inbound) < 2:
        message = f"merge {node.id!r} has {len(inbound)} inbound edges; needs >= 2"
        problems.append(problem(WORKFLOW_FILE, at, "merge_inbound", message))
    if len(outbound) != 1:
        message = f"merge {node.id!r} has {len(outbound)} outbound edges; needs 1"
        problems.append(problem(WORKFLOW_FILE, at, "merge_outbound", message))
    return problems


def _check_decision(node: Node, at: str, outbound: list[Edge]) -> Problems:
    """A decision routes by condition, with at most one default."""
    problems = []
    if not any(e.type == "conditional" for e in outbound):
        message = f"decision {node.id!r} has no conditional edge"
        problems.append(problem(WORKFLOW_FILE, at, "decision_routes", message))
    if sum(e.type == "normal" for e in outbound) > 1:
        message = "a decision has at most one normal (default) edge"
        problems.append(problem(WORKFLOW_FILE, at, "decision_default", message))
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
