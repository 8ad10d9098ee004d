"""Where an ingested fleet message's time goes (cProfile, in-process): 40 agents' five snapshots,
then a heartbeat each. `python -m tests.perf.profile_fleet_ingest` prints ms per message and the
top of the profile (the figures the README's fleet section quotes)."""

from __future__ import annotations

import cProfile
import pstats
import time

from lighthouse.fleet import contract
from lighthouse_tools.localcloud.cloud import LocalCloud, LocalCloudOptions


def main() -> None:
    with LocalCloud(LocalCloudOptions(aws_port=0, api_port=0, start_schedules=False)) as cloud:
        parts = cloud.components()
        agents = [f"profiled-{i}" for i in range(40)]
        for agent in agents:
            parts.agents.register(agent, "agent")
        now = time.time()
        snapshots: dict[str, dict[str, object]] = {
            contract.STATUS: {"state": "online", "ts": now, "heartbeat_s": 30},
            contract.METADATA: {"core_version": "x"},
            contract.STATE: {"uptime_s": 1},
            contract.COMPONENTS: {"components": []},
            contract.CFG_STATE: {"heartbeat_s": 30},
        }
        messages = [
            (contract.topic(agent, name), {"schema": contract.SCHEMA, **payload})
            for agent in agents
            for name, payload in snapshots.items()
        ]
        profile = cProfile.Profile()
        began = time.perf_counter()
        profile.enable()
        for topic, payload in messages:
            parts.fleet.ingest(topic, payload, time.time())
        profile.disable()
        elapsed = time.perf_counter() - began
        print(f"{len(messages)} snapshot messages, one at a time: {1000 * elapsed / len(messages):.1f} ms each")
        began = time.perf_counter()
        for agent in agents:
            beat = {"schema": contract.SCHEMA, "state": "online", "ts": time.time(), "heartbeat_s": 30}
            parts.fleet.ingest(contract.topic(agent, contract.STATUS), beat, time.time())
        print(f"a heartbeat that changes nothing: {1000 * (time.perf_counter() - began) / len(agents):.1f} ms each")
        pstats.Stats(profile).sort_stats("cumulative").print_stats(15)


if __name__ == "__main__":
    main()
