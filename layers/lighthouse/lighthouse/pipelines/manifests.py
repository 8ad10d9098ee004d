"""The manifests of a pipeline config directory: pydantic models, their JSON Schemas, and the loader.

Every file is validated against its JSON Schema (Draft 2020-12, generated from these models and
kept in `schemas/manifests/`), then parsed, then checked across files and as a graph. Any problem
is a `ConfigInvalid` naming the file, the JSON path and the rule — at registration, never at run time.
"""

from __future__ import annotations

from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lighthouse import strictjson
from lighthouse.errors import MalformedRequest, ValidationFailed

MANIFEST_FILES = ("agents.yaml", "tools.yaml", "workflow.yaml", "pipelines.yaml", "memory.yaml", "plugins.yaml")
REQUIRED_FILES = ("agents.yaml", "tools.yaml", "workflow.yaml", "pipelines.yaml")
MAX_MANIFEST_BYTES = 64 * 1024
IDENTIFIER = r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$"
Category = Literal["json", "tool", "security", "llm", "context", "routing", "config"]
CATEGORIES: tuple[Category, ...] = ("json", "tool", "security", "llm", "context", "routing", "config")
NodeType = Literal["agent", "tool", "decision", "merge"]
BUILTIN_TOOLS = ("filesystem.read_file", "filesystem.write_file", "filesystem.list", "command.run")


class ConfigInvalid(ValidationFailed):
    """A manifest breaks a rule; `details.problems` lists each as {file, path, rule, message}."""

    code = "CONFIG_ERROR"


def problem(file: str, path: str, rule: str, message: str) -> dict[str, str]:
    return {"file": file, "path": path, "rule": rule, "message": message}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- agents.yaml --------------------------------------------------------------------------------


class Price(_Strict):
    prompt_per_1k: float = Field(ge=0, description="USD per 1,000 prompt tokens")
    completion_per_1k: float = Field(ge=0, description="USD per 1,000 completion tokens")


class Agent(_Strict):
    id: str = Field(pattern=IDENTIFIER)
    provider: Literal["scripted", "openai", "anthropic", "ollama"]
    model: str = Field(min_length=1)
    system: str = Field(default="You are a careful assistant in a multi-stage agent pipeline.", max_length=8000)
    context_profile: str | None = None
    tools: list[str] = Field(default_factory=list, description="tools this agent's tool plans may call")
    output_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    token_budget: int = Field(default=8000, ge=1, description="prompt + completion tokens per stage")
    json_retries: int = Field(default=2, ge=0, le=5, description="re-asks after an invalid answer")
    connection: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$",
        description="a named connection (admins create them: `lighthouse connections add`) with the provider's "
        "URL and key; required for every provider but scripted",
    )
    responses: list[str] = Field(default_factory=list, description="scripted provider: answers, in order")
    timeout_seconds: float = Field(default=60, gt=0, le=600)

    @model_validator(mode="after")
    def _needs_a_connection(self) -> Agent:
        if self.provider != "scripted" and not self.connection:
            raise ValueError(f"provider {self.provider} needs a `connection` (its URL and key)")
        return self


class AgentsManifest(_Strict):
    agents: list[Agent] = Field(min_length=1)
    prices: dict[str, Price] = Field(default_factory=dict, description="model -> price, for cost estimates")


# ---- tools.yaml ---------------------------------------------------------------------------------


class Tool(_Strict):
    id: str = Field(pattern=IDENTIFIER)
    kind: Literal["builtin", "custom"] = "builtin"
    builtin: Literal["filesystem.read_file", "filesystem.write_file", "filesystem.list", "command.run"] | None = None
    handler: str | None = Field(default=None, description="custom tools: 'package.module:function'")
    input_schema: dict[str, Any] | None = Field(default=None, description="custom tools: their arguments' schema")
    risk: Literal["low", "medium", "high"] = "low"
    filesystem_root: str = Field(default=".", description="the part of the workspace the tool may touch")
    allowlist: list[str] = Field(default_factory=list, description="command.run: executables it may start")
    network: bool = False
    mutates: bool | None = Field(default=None, description="default: write_file, command.run and custom tools do")
    timeout_seconds: float = Field(default=30, gt=0, le=600)
    max_output_bytes: int = Field(default=65536, ge=1, le=10 * 1024 * 1024)


class ToolsManifest(_Strict):
    tools: list[Tool] = Field(default_factory=list)


# ---- workflow.yaml ------------------------------------------------------------------------------


class Node(_Strict):
    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
    type: NodeType
    agent: str | None = Field(default=None, description="agent and decision nodes: the agent that answers")
    tool: str | None = Field(default=None, description="tool nodes: the tool (or take the plan from the input)")
    arguments: dict[str, Any] = Field(default_factory=dict, description="tool nodes: fixed arguments")
    plan_from_input: bool = Field(default=False, description="tool nodes: the previous output is the ToolPlan")
    route_field: str = Field(default="route", description="decision nodes: the output field that names the route")
    instructions: str = Field(default="", max_length=8000)


class Edge(_Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    type: Literal["normal", "conditional", "error", "fallback"] = "normal"
    when: str | None = Field(default=None, description="conditional edges: the route value that takes them")
    # Not `on`: YAML 1.1 reads a bare `on` key as the boolean true.
    categories: list[Category] = Field(
        default_factory=list, description="fallback edges: failure categories (all if empty)"
    )


class Workflow(_Strict):
    name: str = Field(pattern=IDENTIFIER)
    start: str
    nodes: list[Node] = Field(min_length=1)
    edges: list[Edge] = Field(default_factory=list)


class WorkflowManifest(_Strict):
    workflows: list[Workflow] = Field(min_length=1)


# ---- pipelines.yaml -----------------------------------------------------------------------------


class Match(_Strict):
    mode: str | None = None
    tags_all: list[str] = Field(default_factory=list)
    tags_any: list[str] = Field(default_factory=list)


class RetryPolicy(_Strict):
    max_attempts: int = Field(default=0, ge=0, le=10)
    interval_seconds: int = Field(default=1, ge=1, le=300)
    backoff_rate: float = Field(default=2.0, ge=1, le=10)
    categories: list[Category] = Field(default_factory=lambda: list[Category](["llm", "tool"]))


class Fallback(_Strict):
    category: Category
    node_type: NodeType
    fallback: str = Field(description="the node that runs instead")


class Pipeline(_Strict):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,39}$")
    workflow: str
    match: Match | None = None
    retry: dict[str, RetryPolicy] = Field(default_factory=dict, description="node id (or '*') -> retry policy")
    fallbacks: list[Fallback] = Field(default_factory=list)
    project: str = Field(default="default", pattern=IDENTIFIER, description="whose workspace and memory")


class PipelinesManifest(_Strict):
    pipelines: list[Pipeline] = Field(min_length=1)


# ---- memory.yaml --------------------------------------------------------------------------------


class Store(_Strict):
    name: str = Field(pattern=IDENTIFIER)
    scope: Literal["task", "project", "global"]


class ContextProfile(_Strict):
    name: str = Field(pattern=IDENTIFIER)
    max_tokens: int = Field(default=2000, ge=1)
    recent_k: int = Field(default=20, ge=1, le=500)
    stores: list[str] = Field(default_factory=lambda: ["task"])


class MemoryManifest(_Strict):
    stores: list[Store] = Field(
        default_factory=lambda: [Store(name="task", scope="task"), Store(name="project", scope="project")]
    )
    profiles: list[ContextProfile] = Field(default_factory=lambda: [ContextProfile(name="default")])


# ---- plugins.yaml -------------------------------------------------------------------------------


class PluginRef(_Strict):
    name: str = Field(pattern=IDENTIFIER)
    import_path: str = Field(alias="import", pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    config: dict[str, Any] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Telemetry(_Strict):
    sinks: list[str] = Field(default_factory=list, description="'stdout' or 'jsonl:<path>' (the event store always)")
    redact: bool = True


class PluginsManifest(_Strict):
    plugins: list[PluginRef] = Field(default_factory=list)
    telemetry: Telemetry = Field(default_factory=Telemetry)


MODELS: dict[str, type[BaseModel]] = {
    "agents.yaml": AgentsManifest,
    "tools.yaml": ToolsManifest,
    "workflow.yaml": WorkflowManifest,
    "pipelines.yaml": PipelinesManifest,
    "memory.yaml": MemoryManifest,
    "plugins.yaml": PluginsManifest,
}


def json_schema(file: str) -> dict[str, Any]:
    schema = MODELS[file].model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": file, **schema}


class ConfigBundle(BaseModel):
    """One validated config directory."""

    agents: AgentsManifest
    tools: ToolsManifest
    workflows: WorkflowManifest
    pipelines: PipelinesManifest
    memory: MemoryManifest
    plugins: PluginsManifest

    def agent(self, agent_id: str) -> Agent:
        return next(a for a in self.agents.agents if a.id == agent_id)

    def tool(self, tool_id: str) -> Tool | None:
        declared = next((t for t in self.tools.tools if t.id == tool_id), None)
        if declared is None and tool_id in BUILTIN_TOOLS:
            return None
        return declared

    def workflow(self, name: str) -> Workflow:
        return next(w for w in self.workflows.workflows if w.name == name)

    def pipeline(self, name: str) -> Pipeline:
        return next(p for p in self.pipelines.pipelines if p.name == name)


INLINE_ENDPOINT_KEYS = ("base_url", "api_key_env", "api_key_secret")


def _inline_endpoints(document: dict[str, Any]) -> list[dict[str, str]]:
    """Agents that still set a URL or a key source themselves (manifests before named connections)."""
    agents = document.get("agents")
    found = []
    for index, agent in enumerate(agents if isinstance(agents, list) else []):
        for key in INLINE_ENDPOINT_KEYS:
            if isinstance(agent, dict) and key in agent:
                found.append(
                    problem(
                        "agents.yaml",
                        f"$.agents[{index}].{key}",
                        "connection_only",
                        f"{key} can no longer be set in a manifest: name a `connection` (an admin creates it with "
                        "its URL and key), so no manifest can send a key to a server of its choosing",
                    )
                )
    return found


def _load_yaml(text: str, name: str) -> Any:
    """YAML without aliases (a few anchors can expand to billions of nodes: the "billion laughs")
    and with JSON's types only (YAML also makes dates, sets, bytes and .nan), checked like a body."""
    if not text.strip():
        return {}
    depth = 0
    # The parser is iterative; the composer that builds the document recurses once per level.
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise yaml.YAMLError(f"aliases (*{event.anchor}) are not allowed in manifests; write the value out")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > strictjson.MAX_DEPTH:
                raise yaml.YAMLError(f"the document nests deeper than {strictjson.MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    document = yaml.safe_load(text)
    strictjson.check_value(document, where=name)
    return document


def _document(name: str, text: str) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    """One manifest file, parsed and checked against its schema, and the problems found."""
    if len(text.encode()) > MAX_MANIFEST_BYTES:
        return None, [problem(name, "$", "max_size", f"larger than {MAX_MANIFEST_BYTES} bytes")]
    try:
        document = _load_yaml(text, name)
    except yaml.YAMLError as error:
        return None, [problem(name, "$", "yaml", f"not valid YAML: {error}")]
    except MalformedRequest as error:
        return None, [problem(name, error.details.get("path", "$"), "json_compatible", error.message)]
    if not isinstance(document, dict):
        return None, [problem(name, "$", "type", "the document must be a mapping")]
    found = _inline_endpoints(document) if name == "agents.yaml" else []
    violations = sorted(Draft202012Validator(json_schema(name)).iter_errors(document), key=lambda e: list(e.path))
    for violation in violations:
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in violation.absolute_path)
        found.append(problem(name, path, str(violation.validator), violation.message))
    return document, found


def parse(files: dict[str, str]) -> ConfigBundle:
    """Parse and validate the text of each manifest file on its own (the graph checks that span files
    are `pipelines.bundle.load`'s); ConfigInvalid lists every problem found."""
    problems = _file_set_problems(files)
    documents: dict[str, Any] = {}
    for name in (name for name in MANIFEST_FILES if name in files):
        document, found = _document(name, files[name])
        problems += found
        if document is not None and not found:
            documents[name] = document
    if problems:
        raise ConfigInvalid("the pipeline config is invalid", {"problems": problems})
    return ConfigBundle(
        agents=AgentsManifest.model_validate(documents["agents.yaml"]),
        tools=ToolsManifest.model_validate(documents["tools.yaml"]),
        workflows=WorkflowManifest.model_validate(documents["workflow.yaml"]),
        pipelines=PipelinesManifest.model_validate(documents["pipelines.yaml"]),
        memory=MemoryManifest.model_validate(documents.get("memory.yaml", {})),
        plugins=PluginsManifest.model_validate(documents.get("plugins.yaml", {})),
    )


def _file_set_problems(files: dict[str, str]) -> list[dict[str, str]]:
    """Files that are not manifests, and required manifests that are missing."""
    unknown = sorted(set(files) - set(MANIFEST_FILES))
    missing = [name for name in REQUIRED_FILES if name not in files]
    return [
        *(problem(name, "$", "known_file", f"not a manifest ({', '.join(MANIFEST_FILES)})") for name in unknown),
        *(problem(name, "$", "required_file", "this manifest is required") for name in missing),
    ]
