"""Fleet as a service: MQTT credentials, what agents report (through the topic rules' queue),
commands to agents and their results, and the fleet's read models.

Decisions are in `fleet.logic`; the broker, storage and the clock are injected.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import jsonschema

from lighthouse.agents.service import AgentService
from lighthouse.auth.tokens import Principal, TokenSigner
from lighthouse.clock import Clock
from lighthouse.errors import MalformedRequest, NotFound, Unauthenticated, ValidationFailed
from lighthouse.events import EventStore, ReadModelStore
from lighthouse.events.command import execute
from lighthouse.events.inline import InlineState
from lighthouse.events.projector import ReadModelDocument
from lighthouse.fleet import contract, logic
from lighthouse.fleet.broker import Broker
from lighthouse.fleet.models import (
    FINAL_STATUSES,
    FLEET_MODEL,
    Answer,
    CommandAccepted,
    CommandState,
    CommandView,
    ComponentUploadUrl,
    FleetAgentDetail,
    FleetAgentState,
    FleetAgentView,
    FleetPage,
    FleetSecurityViolation,
    FleetSnapshotRecorded,
    FleetTagsSet,
    Issue,
    MqttCredentials,
    Observe,
    Report,
    SendCommand,
)
from lighthouse.fleet.store import CREDENTIALS_MODEL, command_stream, fleet_stream
from lighthouse.notify import await_stream
from lighthouse.paging import cursor_string, encode_cursor

MAX_WAIT_SECONDS = 20
ARTIFACT_SCHEME = "artifact:"


def command_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema a command of `kind` must satisfy (schemas/fleet/<kind>.json is this, written out)."""
    return contract.COMMAND_MODELS[kind].model_json_schema(by_alias=True)


@dataclass(frozen=True)
class SourcePolicy:
    """Where install sources may come from: these URL prefixes, or the platform's own bucket."""

    allowed_prefixes: tuple[str, ...]
    artifacts_bucket: str
    presign: Any  # (method, bucket, key, seconds) -> URL

    def upload(self, filename: str, seconds: int = 900) -> ComponentUploadUrl:
        key = f"components/{filename}"
        return ComponentUploadUrl(
            upload_url=str(self.presign("put_object", self.artifacts_bucket, key, seconds)),
            source=f"{ARTIFACT_SCHEME}{key}",
            expires_in=seconds,
        )

    def resolve(self, source: str, seconds: int) -> str:
        if source.startswith(ARTIFACT_SCHEME):
            key = source.removeprefix(ARTIFACT_SCHEME).lstrip("/")
            if not key.startswith("components/") or ".." in key or not key.endswith(".whl"):
                raise ValidationFailed("an artifact source names components/<file>.whl in the platform's bucket")
            return str(self.presign("get_object", self.artifacts_bucket, key, seconds))
        if any(source.startswith(prefix) for prefix in self.allowed_prefixes if prefix):
            return source
        raise ValidationFailed(
            "source is not allowed: use artifact:components/<file>.whl (POST /fleet/components) "
            "or a URL under one of the allowed prefixes",
            {"allowed_prefixes": list(self.allowed_prefixes)},
        )


class FleetService:
    def __init__(
        self,
        *,
        events: EventStore,
        read_models: ReadModelStore,
        agents: AgentService,
        fleet: InlineState[FleetAgentState],
        commands: InlineState[CommandState],
        broker: Broker,
        passwords: TokenSigner,
        clock: Clock,
        mqtt_url: str,
        sources: SourcePolicy,
        credential_ttl_seconds: int = 86400,
        authorizer_name: str = "",
        status_every_seconds: float = 60.0,
        start_deadline: Any = None,  # (request_id, expires_at) -> None: the Step Functions wait
    ) -> None:
        self._events = events
        self._read_models = read_models
        self._agents = agents
        self._fleet = fleet
        self._commands = commands
        self._broker = broker
        self._passwords = passwords
        self._clock = clock
        self._mqtt_url = mqtt_url
        self._sources = sources
        self._credential_ttl = credential_ttl_seconds
        self._authorizer_name = authorizer_name
        self._status_every = status_every_seconds
        self._start_deadline = start_deadline
        self._known: set[str] = set()

    # ---- credentials ------------------------------------------------------------------------

    def mqtt_credentials(self, principal: Principal) -> MqttCredentials:
        """A password for the caller's own MQTT account; a new one replaces (revokes) the last."""
        if not self._mqtt_url:
            raise NotFound("this deployment has no MQTT broker configured")
        admin = principal.role == "admin"
        password, issued = self._passwords.issue(
            principal.agent_id, principal.role, self._clock.now(), self._credential_ttl
        )
        self._broker.grant(principal.agent_id, password, None if admin else contract.agent_acl(principal.agent_id))
        current = self._read_models.get(CREDENTIALS_MODEL, principal.agent_id)
        self._read_models.put(
            ReadModelDocument(
                model=CREDENTIALS_MODEL,
                key=principal.agent_id,
                body={"token_id": issued.token_id, "expires_at": issued.expires_at, "role": principal.role},
                revision=current.revision + 1,
                applied={},
            ),
            expected_revision=current.revision,
        )
        # IoT Core picks the custom authorizer by a query in the username; the authorizer strips it.
        suffix = f"?x-amz-customauthorizer-name={self._authorizer_name}" if self._authorizer_name else ""
        return MqttCredentials(
            mqtt_url=self._mqtt_url,
            username=principal.agent_id + suffix,
            password=password,
            client_id=principal.agent_id,
            expires_at=issued.expires_at,
        )

    def authorize(self, username: str, password: str) -> Principal | None:
        """For IoT Core's custom authorizer: the account if this is its live, unexpired password."""
        try:
            principal = self._passwords.verify(password, self._clock.now())
        except Unauthenticated:
            return None
        live = self._read_models.get(CREDENTIALS_MODEL, username).body or {}
        if principal.agent_id != username or live.get("token_id") != principal.token_id:
            return None
        return principal

    def component_upload(self, filename: str) -> ComponentUploadUrl:
        """Where to PUT a component wheel so that install commands can name it (artifact:...)."""
        return self._sources.upload(filename)

    # ---- what agents report -----------------------------------------------------------------

    def ingest(self, topic: str, payload: Any, received_at: float | None = None) -> None:
        """One message a topic rule forwarded. Raises MalformedRequest for what can never be recorded."""
        agent_id = self.agent_of(topic)
        self.ingest_agent(agent_id, [Report(topic, payload, received_at or self._clock.now())])

    def agent_of(self, topic: str) -> str:
        parsed = contract.parse_topic(topic)
        if parsed is None or parsed.kind not in ("snapshot", "result"):
            raise MalformedRequest(f"topic {topic!r} is not an agent's snapshot or result topic")
        return parsed.agent_id

    def ingest_agent(self, agent_id: str, reports: list[Report]) -> None:
        """What one agent published, in order: its snapshots in one append, each result on its
        command, its presence fed to the agent's stream. MalformedRequest if none can be recorded."""
        if agent_id not in self._known and not self._agents.exists(agent_id):
            raise MalformedRequest(f"agent {agent_id!r} is not registered")
        self._known.add(agent_id)  # agents are never deleted: one lookup per container
        observed: list[Observe] = []
        for report in (r if r.at else Report(r.topic, r.payload, self._clock.now()) for r in reports):
            parsed = contract.parse_topic(report.topic)
            if parsed is None or parsed.agent_id != agent_id:
                raise MalformedRequest(f"topic {report.topic!r} is not one of {agent_id!r}'s")
            if not isinstance(report.payload, dict):
                raise MalformedRequest("payload must be a JSON object")
            if parsed.kind == "result":
                self._record_result(agent_id, parsed.suffix, report.payload, report.at)
            elif parsed.kind == "snapshot":
                if parsed.suffix == contract.STATUS:
                    _check_status(report.payload)
                observed.append(Observe(agent_id, parsed.suffix, report.payload, report.at, self._status_every))
        if observed:
            outcome = execute(
                self._events, fleet_stream(agent_id), logic.FLEET_FOLD, logic.observe_all, observed, inline=self._fleet
            )
            self._feed_presence(agent_id, [stored.event for stored in outcome.appended])

    def _feed_presence(self, agent_id: str, recorded: list[Any]) -> None:
        """MQTT's status and the HTTP heartbeat feed one presence model, the agent's stream: each
        status the fleet records (a presence change, or one every `status_every`) is a heartbeat
        there, and the will is the agent going offline."""
        for event in recorded:
            if isinstance(event, FleetSnapshotRecorded) and event.name == contract.STATUS:
                if event.payload.get("state") == "online":
                    self._agents.record_beat(agent_id, event.at, "ready")
                else:
                    reason = str(event.payload.get("reason") or "MQTT status offline")
                    self._agents.record_offline(agent_id, event.at, reason)

    def _record_result(self, agent_id: str, suffix: str, payload: dict[str, Any], at: float) -> None:
        kind = contract.COMMAND_OF_RESULT[suffix]
        try:
            result = contract.Result.model_validate(payload)
        except ValueError as error:
            raise MalformedRequest(f"result payload: {error}") from error
        answer = Answer(agent_id, kind, payload, at)
        stream = command_stream(result.request_id)
        state, version = self._commands.load(stream)
        reason = logic.mismatch(state, answer)
        if reason is not None:
            violation = FleetSecurityViolation(
                topic=contract.topic(agent_id, suffix), reason=reason, at=at, request_id=result.request_id
            )
            execute(
                self._events, fleet_stream(agent_id), logic.FLEET_FOLD, logic.violation, violation, inline=self._fleet
            )
            return
        execute(
            self._events,
            stream,
            logic.COMMAND_FOLD,
            logic.complete,
            answer,
            loaded=(state, version),
            inline=self._commands,
        )

    # ---- commands ---------------------------------------------------------------------------

    def send(
        self, principal: Principal, agent_id: str, request: SendCommand, rollout_id: str | None = None
    ) -> CommandAccepted:
        if request.type == "collect":
            # Its upload URL decides where an agent sends container logs: only runs make one.
            raise ValidationFailed("collect commands are sent by runs (POST /runs), not directly")
        fields = request.model_extra or {}
        if request.type == "install" and "source" in fields:
            fields = {**fields, "source": self._sources.resolve(str(fields["source"]), request.ttl_seconds + 3600)}
        return self.dispatch(principal.agent_id, agent_id, request.type, fields, request.ttl_seconds, rollout_id)

    def dispatch(
        self,
        by: str,
        agent_id: str,
        kind: str,
        fields: dict[str, Any],
        ttl_seconds: int,
        rollout_id: str | None = None,
        request_id: str | None = None,
    ) -> CommandAccepted:
        """Validate, record, start the deadline, publish: every command's one path to an agent."""
        if not self._agents.exists(agent_id):
            raise NotFound(f"agent {agent_id!r} not found")
        now = self._clock.now()
        request_id = request_id or f"cmd-{secrets.token_hex(12)}"
        payload = {"schema": contract.SCHEMA, "request_id": request_id, **fields}
        validate_command(kind, payload)
        issued = Issue(request_id, agent_id, kind, payload, by, now, now + ttl_seconds, rollout_id)
        stream = command_stream(request_id)
        outcome = execute(
            self._events, stream, logic.COMMAND_FOLD, logic.issue, issued,
            loaded=(CommandState(), 0), inline=self._commands,
        )  # fmt: skip
        # The deadline first: a command the broker then refuses still ends, expired, at its ttl.
        if self._start_deadline is not None:
            self._start_deadline(request_id, issued.expires_at)
        # QoS 1 to the agent's persistent session: an offline agent gets it when it reconnects,
        # unless its ttl (the message expiry) runs out first.
        topic = contract.topic(agent_id, contract.COMMAND_TOPICS[kind])
        self._broker.publish(topic, payload, ttl_seconds)
        outcome = execute(
            self._events, stream, logic.COMMAND_FOLD, logic.deliver, now,
            loaded=(outcome.state, outcome.version), inline=self._commands,
        )  # fmt: skip
        return CommandAccepted(request_id=request_id, agent_id=agent_id, status=outcome.state.status)

    def expire(self, request_id: str) -> CommandView:
        """The command's ttl ran out (the deadline state machine's last step); a finished one stays."""
        outcome = execute(
            self._events,
            command_stream(request_id),
            logic.COMMAND_FOLD,
            logic.expire,
            self._clock.now(),
            inline=self._commands,
        )
        return logic.command_view(outcome.state)

    def command(self, request_id: str, wait_seconds: float = 0) -> CommandView:
        if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
            raise ValidationFailed(f"wait must be between 0 and {MAX_WAIT_SECONDS} seconds")
        stream = command_stream(request_id)
        state, _ = self._commands.load(stream)
        if not state.exists:
            raise NotFound(f"no command {request_id!r}")
        state = await_stream(
            stream,
            state,
            finished=lambda s: s.status in FINAL_STATUSES,
            reload=lambda: self._commands.load(stream)[0],
            current_version=self._events.current_version,
            now=self._clock.now,
            wait_seconds=wait_seconds,
        )
        return logic.command_view(state)

    # ---- read models ------------------------------------------------------------------------

    def agent(self, agent_id: str) -> FleetAgentDetail:
        state, _ = self._fleet.load(fleet_stream(agent_id))
        if not state.agent_id:
            raise NotFound(f"agent {agent_id!r} has not reported to the fleet")
        view = logic.agent_view(state, detail=True)
        assert isinstance(view, FleetAgentDetail)
        return view

    def agents(
        self,
        limit: int,
        next_token: str | None,
        status: str | None = None,
        component: str | None = None,
        tag: str | None = None,
    ) -> FleetPage:
        documents, last = self._read_models.list(FLEET_MODEL, limit=limit, start_key=cursor_string(next_token))
        views: list[FleetAgentView] = []
        for document in documents:
            view = logic.agent_view(logic.FLEET_FOLD.from_snapshot(document.body or {}))
            if logic.matches(view, status, component, tag):
                views.append(view)
        return FleetPage(agents=views, next_token=encode_cursor(last) if last else None)

    def set_tags(self, principal: Principal, agent_id: str, tags: list[str]) -> FleetAgentView:
        if not self._agents.exists(agent_id):
            raise NotFound(f"agent {agent_id!r} not found")
        command = FleetTagsSet(tags=tags, by=principal.agent_id, at=self._clock.now())
        outcome = execute(
            self._events, fleet_stream(agent_id), logic.FLEET_FOLD, logic.set_tags, command, inline=self._fleet
        )
        return logic.agent_view(outcome.state.model_copy(update={"agent_id": agent_id}))

    def selected(self, agent_ids: list[str], tags: list[str]) -> list[str]:
        """The agents a rollout's selector names: these ids, or every agent with all these tags."""
        if agent_ids:
            return sorted(set(agent_ids))
        chosen: list[str] = []
        token: str | None = None
        while True:
            documents, token = self._read_models.list(FLEET_MODEL, limit=200, start_key=token)
            for document in documents:
                state = logic.FLEET_FOLD.from_snapshot(document.body or {})
                if state.agent_id and set(tags) <= set(state.tags):
                    chosen.append(state.agent_id)
            if not token:
                return chosen


def _check_status(payload: dict[str, Any]) -> None:
    try:
        contract.Status.model_validate(payload)
    except ValueError as error:
        raise MalformedRequest(f"status payload: {error}") from error


def validate_command(kind: str, payload: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(command_schema(kind))
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    if errors:
        reasons = [f"{'/'.join(str(p) for p in e.absolute_path) or '(command)'}: {e.message}" for e in errors]
        raise ValidationFailed(f"invalid {kind} command: " + "; ".join(reasons), {"reasons": reasons})
