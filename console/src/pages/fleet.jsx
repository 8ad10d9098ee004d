import { useState } from "react";
import { api } from "../api.js";
import { ActionButton, DetailPage, Field, Json, Problem, Status } from "../components.jsx";
import { formatTime, usePolled } from "../hooks.js";
import { ExecutionTable } from "./executions.jsx";

export function Fleet({ route }) {
  if (route[0] === "agents" && route[1]) return <Agent agentId={route[1]} />;
  if (route[0] === "rollouts" && route[1]) return <Rollout rolloutId={route[1]} />;
  if (route[0] === "commands" && route[1]) return <Command commandId={route[1]} />;
  return (
    <section aria-labelledby="fleet-title">
      <h1 id="fleet-title">Fleet</h1>
      <Agents />
      <StartRollout />
      <h2>Command history</h2>
      <CommandHistory />
    </section>
  );
}

function Agents() {
  const { data, error } = usePolled("/fleet/agents?limit=200", 3000);
  return (
    <>
      <Problem error={error} />
      {data && (
        <table className="list">
          <caption>{data.agents.length} agents</caption>
          <thead>
            <tr>
              <th scope="col">Agent</th>
              <th scope="col">Presence</th>
              <th scope="col">Last seen</th>
              <th scope="col">Core</th>
              <th scope="col">Components</th>
              <th scope="col">Tags</th>
            </tr>
          </thead>
          <tbody>
            {data.agents.map((a) => (
              <tr key={a.agent_id}>
                <td>
                  <a href={`#/fleet/agents/${a.agent_id}`}>{a.agent_id}</a>
                </td>
                <td>
                  <Status value={a.presence} />
                </td>
                <td>{formatTime(a.last_seen)}</td>
                <td>{a.core_version || "—"}</td>
                <td>{a.components.join(", ") || "—"}</td>
                <td>{a.tags.join(", ") || "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function CommandHistory() {
  const { data, error } = usePolled("/executions?kind=fleet_command&limit=50", 3000);
  return (
    <>
      <Problem error={error} />
      {data && <ExecutionTable executions={data.executions} caption="Commands (each waits in an execution)" />}
    </>
  );
}

const COMMAND_EXAMPLES = {
  refresh: {},
  cfg_set: { set: { heartbeat_s: 30 } },
  collect: {},
};

function Agent({ agentId }) {
  const { data, error } = usePolled(`/fleet/agents/${agentId}`, 3000);
  const [type, setType] = useState("refresh");
  const [extra, setExtra] = useState("{}");
  const [sent, setSent] = useState(null);
  const send = async () => {
    const fields = JSON.parse(extra || "{}");
    const accepted = await api(`/fleet/agents/${agentId}/commands`, { method: "POST", body: { type, ...fields } });
    setSent(accepted);
    const finished = await api(`/fleet/commands/${accepted.request_id}?wait=15`);
    setSent(finished);
  };
  return (
    <DetailPage id="agent-title" title={`Agent ${agentId}`} back="#/fleet" backLabel="The fleet" error={error}>
      {data && (
        <p>
          <Status value={data.presence} /> last seen {formatTime(data.last_seen)} · core {data.core_version || "—"}
        </p>
      )}
      <h2>Send a command</h2>
      <div className="filters">
        <Field id="command-type" label="Command">
          <select
            id="command-type"
            value={type}
            onChange={(e) => {
              setType(e.target.value);
              setExtra(JSON.stringify(COMMAND_EXAMPLES[e.target.value] || {}));
            }}
          >
            {["refresh", "cfg_set", "collect", "install", "uninstall"].map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </Field>
        <Field id="command-fields" label="Fields (JSON)">
          <input id="command-fields" value={extra} onChange={(e) => setExtra(e.target.value)} />
        </Field>
      </div>
      <ActionButton onAction={send}>Send {type}</ActionButton>
      {sent && (
        <div className="command-result" data-command-status={sent.status}>
          <p>
            Command <a href={`#/fleet/commands/${sent.request_id}`}>{sent.request_id}</a>: <Status value={sent.status} />
          </p>
          {sent.result && <Json value={sent.result} label="Command result" />}
        </div>
      )}
      <h2>Snapshots</h2>
      {data && <Json value={data.snapshots} label="Snapshots" />}
    </DetailPage>
  );
}

function Command({ commandId }) {
  const { data, error } = usePolled(`/fleet/commands/${commandId}`, 2000);
  return (
    <DetailPage id="command-title" title={`Command ${commandId}`} back="#/fleet" backLabel="The fleet" error={error}>
      {data && (
        <>
          <p>
            <Status value={data.status} /> {data.type} to {data.agent_id}, sent {formatTime(data.sent_at)} by {data.by}
          </p>
          <Json value={data.result} label="Result" />
        </>
      )}
    </DetailPage>
  );
}

function StartRollout() {
  const [command, setCommand] = useState('{"type": "refresh"}');
  const [tags, setTags] = useState("");
  const [agents, setAgents] = useState("");
  const [batch, setBatch] = useState("10");
  return (
    <>
      <h2>Start a rollout</h2>
      <div className="filters">
        <Field id="rollout-command" label="Command (JSON)">
          <input id="rollout-command" value={command} onChange={(e) => setCommand(e.target.value)} />
        </Field>
        <Field id="rollout-tags" label="Tags (comma-separated)">
          <input id="rollout-tags" value={tags} onChange={(e) => setTags(e.target.value)} />
        </Field>
        <Field id="rollout-agents" label="Agent ids (comma-separated)">
          <input id="rollout-agents" value={agents} onChange={(e) => setAgents(e.target.value)} />
        </Field>
        <Field id="rollout-batch" label="Batch size">
          <input id="rollout-batch" type="number" min="1" value={batch} onChange={(e) => setBatch(e.target.value)} />
        </Field>
      </div>
      <ActionButton
        onAction={async () => {
          const split = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);
          const selector = {};
          if (split(tags).length) selector.tags = split(tags);
          if (split(agents).length) selector.agent_ids = split(agents);
          const started = await api("/fleet/rollouts", {
            method: "POST",
            body: { command: JSON.parse(command), selector, batch_size: Number(batch) },
          });
          window.location.hash = `#/fleet/rollouts/${started.rollout_id}`;
        }}
      >
        Start rollout
      </ActionButton>
    </>
  );
}

function Rollout({ rolloutId }) {
  const { data, error } = usePolled(`/fleet/rollouts/${rolloutId}`, 1500);
  return (
    <DetailPage id="rollout-title" title={`Rollout ${rolloutId}`} back="#/fleet" backLabel="The fleet" error={error}>
      {data && (
        <>
          <p>
            <Status value={data.status} /> {data.reason} · {data.pending} pending · failures{" "}
            {data.failure_percent_so_far}% (limit {data.max_failure_percent}%)
          </p>
          <table className="list">
            <thead>
              <tr>
                <th scope="col">Batch</th>
                <th scope="col">Agents</th>
                <th scope="col">Outcomes</th>
                <th scope="col">Settled</th>
              </tr>
            </thead>
            <tbody>
              {data.batches.map((b) => (
                <tr key={b.batch}>
                  <td>{b.batch}</td>
                  <td>{b.agents.join(", ")}</td>
                  <td>{Object.entries(b.outcomes || {}).map(([a, o]) => `${a}: ${o}`).join(", ") || "—"}</td>
                  <td>{formatTime(b.settled_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </DetailPage>
  );
}
