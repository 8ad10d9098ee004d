import { useState } from "react";
import { Json, Problem, Status } from "../components.jsx";
import { ExecutionGraph, STATUS_LABEL } from "../graph.jsx";
import { formatTime, usePolled } from "../hooks.js";

const KINDS = ["", "elicitation", "expert_round", "pipeline_task", "run", "fleet_command", "rollout", "presence", "other"];

export function Executions({ route }) {
  return route[0] ? <ExecutionPage arn={route[0]} /> : <ExecutionList />;
}

function ExecutionList() {
  const [kind, setKind] = useState("");
  const { data, error } = usePolled(`/executions?limit=100${kind ? `&kind=${kind}` : ""}`, 3000);
  return (
    <section aria-labelledby="executions-title">
      <h1 id="executions-title">Executions</h1>
      <div className="field inline">
        <label htmlFor="kind">Kind</label>
        <select id="kind" value={kind} onChange={(e) => setKind(e.target.value)}>
          {KINDS.map((k) => (
            <option key={k} value={k}>
              {k || "all"}
            </option>
          ))}
        </select>
      </div>
      <Problem error={error} />
      {data && <ExecutionTable executions={data.executions} />}
    </section>
  );
}

export function ExecutionTable({ executions, caption = "Executions, newest first" }) {
  return (
    <table className="list">
      <caption>{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Execution</th>
          <th scope="col">Kind</th>
          <th scope="col">Status</th>
          <th scope="col">Started</th>
          <th scope="col">Object</th>
        </tr>
      </thead>
      <tbody>
        {executions.map((e) => (
          <tr key={e.execution_arn} data-execution={e.name}>
            <td>
              <a href={`#/executions/${encodeURIComponent(e.execution_arn)}`}>{e.name}</a>
            </td>
            <td>{e.link.kind}</td>
            <td>
              <Status value={e.status} />
            </td>
            <td>{formatTime(e.started_at)}</td>
            <td>{e.link.console_path ? <a href={e.link.console_path}>{e.link.object_id}</a> : "—"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function ExecutionPage({ arn }) {
  const { data, error } = usePolled(`/executions/${encodeURIComponent(arn)}`, 1500);
  const [selected, setSelected] = useState(null);
  if (!data) return error ? <Problem error={error} /> : <p>Loading…</p>;
  const state = data.nodes.find((n) => n.id === selected);
  const { execution } = data;
  return (
    <section aria-labelledby="execution-title">
      <h1 id="execution-title">
        {execution.state_machine} · {execution.name}
      </h1>
      <p>
        <Status value={execution.status} /> started {formatTime(execution.started_at)}
        {execution.stopped_at ? `, stopped ${formatTime(execution.stopped_at)}` : ""} · {execution.link.kind}{" "}
        {execution.link.console_path && <a href={execution.link.console_path}>{execution.link.object_id}</a>}
      </p>
      {data.error && <p className="problem">{data.error}</p>}
      <Problem error={error} />
      <ul className="legend" aria-label="State colours">
        {Object.entries(STATUS_LABEL).map(([status, label]) => (
          <li key={status} className={`legend-${status}`}>
            {label}
          </li>
        ))}
      </ul>
      <div className="execution">
        <ExecutionGraph nodes={data.nodes} edges={data.edges} selected={selected} onSelect={setSelected} />
        <aside className="state-detail" aria-live="polite">
          {state ? (
            <>
              <h2>{state.id}</h2>
              <p>
                {state.type} · {STATUS_LABEL[state.status]}
              </p>
              {state.error && <p className="problem">{state.error}</p>}
              <h3>Input</h3>
              <Json value={state.input} label={`${state.id} input`} />
              <h3>Output</h3>
              <Json value={state.output} label={`${state.id} output`} />
            </>
          ) : (
            <p>Select a state to see its input and output.</p>
          )}
        </aside>
      </div>
      <h2>Event history</h2>
      <table className="list history">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Type</th>
            <th scope="col">State</th>
            <th scope="col">Time</th>
          </tr>
        </thead>
        <tbody>
          {data.history.map((h) => (
            <tr key={h.id}>
              <td>{h.id}</td>
              <td>{h.type}</td>
              <td>{h.state || "—"}</td>
              <td>{formatTime(h.at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
