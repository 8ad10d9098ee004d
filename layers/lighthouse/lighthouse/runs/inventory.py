"""The fleet's container inventory, as agents last reported it (their retained `core/inventory`
snapshots, kept in each agent's fleet state document)."""

from __future__ import annotations

from typing import Any

from lighthouse.events import ReadModelStore
from lighthouse.fleet import contract
from lighthouse.fleet.logic import FLEET_FOLD
from lighthouse.fleet.models import FLEET_MODEL, FleetAgentState
from lighthouse.runs.models import AllowlistEntry, InventoryContainer

PAGE = 200


class InventoryReader:
    def __init__(self, read_models: ReadModelStore) -> None:
        self._read_models = read_models

    def agents(self) -> list[FleetAgentState]:
        found: list[FleetAgentState] = []
        token: str | None = None
        while True:
            documents, token = self._read_models.list(FLEET_MODEL, limit=PAGE, start_key=token)
            found.extend(FLEET_FOLD.from_snapshot(d.body or {}) for d in documents)
            if not token:
                return [agent for agent in found if agent.agent_id]

    def online_agents(self) -> list[str]:
        return sorted(agent.agent_id for agent in self.agents() if agent.presence == "online")

    def containers_by_agent(self, agent_ids: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
        """Each agent's containers (agents that reported an inventory; only `agent_ids` if given)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for agent in self.agents():
            snapshot = agent.snapshots.get(contract.INVENTORY)
            if snapshot is None or (agent_ids is not None and agent.agent_id not in agent_ids):
                continue
            found[agent.agent_id] = [c for c in snapshot.get("containers") or [] if isinstance(c, dict)]
        return found

    def container_agents(self) -> dict[str, str]:
        """Container id -> the agent whose inventory shows it (the latest report wins)."""
        where: dict[str, tuple[float, str]] = {}
        for agent in self.agents():
            snapshot = agent.snapshots.get(contract.INVENTORY)
            if snapshot is None:
                continue
            at = agent.recorded_at.get(contract.INVENTORY, 0.0)
            for container in snapshot.get("containers") or []:
                container_id = str(container.get("id", ""))
                if container_id and (container_id not in where or where[container_id][0] < at):
                    where[container_id] = (at, agent.agent_id)
        return {container: agent for container, (_, agent) in where.items()}

    def listing(self, allowlist: list[AllowlistEntry]) -> tuple[list[InventoryContainer], dict[str, dict[str, Any]]]:
        allowed = {entry.container_id: entry for entry in allowlist}
        containers: list[InventoryContainer] = []
        agents: dict[str, dict[str, Any]] = {}
        for agent in self.agents():
            snapshot = agent.snapshots.get(contract.INVENTORY)
            if snapshot is None:
                continue
            agents[agent.agent_id] = {"docker": snapshot.get("docker"), "error": snapshot.get("error")}
            for container in snapshot.get("containers") or []:
                container_id = str(container.get("id", ""))
                entry = allowed.get(container_id)
                containers.append(
                    InventoryContainer(
                        agent_id=agent.agent_id, container_id=container_id, name=str(container.get("name", "")),
                        image=str(container.get("image", "")), state=str(container.get("state", "")),
                        labels=container.get("labels") or {}, ports=container.get("ports") or [],
                        allowlisted=entry is not None, enabled=bool(entry and entry.enabled),
                        reported_at=agent.recorded_at.get(contract.INVENTORY),
                    )
                )  # fmt: skip
        return containers, agents
