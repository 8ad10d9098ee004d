import { api } from "../api.js";
import { ActionButton, DetailPage, Json, Problem, Status } from "../components.jsx";
import { formatTime, usePolled } from "../hooks.js";
import { ExecutionTable } from "./executions.jsx";

export function Work({ route, session }) {
  if (route[0] === "tasks" && route[1]) return <Task taskId={route[1]} />;
  if (route[0] === "runs" && route[1]) return <Run runId={route[1]} />;
  return (
    <section aria-labelledby="work-title">
      <h1 id="work-title">Pipelines and runs</h1>
      {session.role === "admin" && <Tasks />}
      <Runs />
    </section>
  );
}

function Tasks() {
  const { data, error } = usePolled("/executions?kind=pipeline_task&limit=50", 3000);
  return (
    <>
      <h2>Pipeline tasks</h2>
      <Problem error={error} />
      {data && (
        <ExecutionTable
          caption="Each task is one execution of its pipeline's state machine"
          executions={data.executions.map((e) => ({ ...e, link: { ...e.link, console_path: `#/work/tasks/${e.name}` } }))}
        />
      )}
    </>
  );
}

function Task({ taskId }) {
  const { data, error, reload } = usePolled(`/tasks/${taskId}`, 1500);
  const ended = data && ["COMPLETED", "FAILED", "CANCELLED"].includes(data.status);
  return (
    <DetailPage id="task-title" title={`Task ${taskId}`} back="#/work" backLabel="All pipelines and runs" error={error}>
      {data && (
        <>
          <p>
            <Status value={data.status} /> pipeline {data.pipeline} v{data.version} · {data.total_tokens} tokens · $
            {Number(data.cost || 0).toFixed(4)} · created {formatTime(data.created_at)}
          </p>
          <div className="buttons">
            <ActionButton
              disabled={ended}
              onAction={async () => {
                await api(`/tasks/${taskId}/cancel`, { method: "POST", body: {} });
                await reload();
              }}
            >
              Cancel task
            </ActionButton>
            <ActionButton
              className="secondary"
              disabled={data.status !== "FAILED"}
              onAction={async () => {
                await api(`/tasks/${taskId}/resume`, { method: "POST", body: {} });
                await reload();
              }}
            >
              Resume from the failed stage
            </ActionButton>
          </div>
          {data.executions?.map((arn) => (
            <p key={arn}>
              <a href={`#/executions/${encodeURIComponent(arn)}`}>Execution graph</a>
            </p>
          ))}
          <h2>Stages</h2>
          <table className="list">
            <thead>
              <tr>
                <th scope="col">Stage</th>
                <th scope="col">Type</th>
                <th scope="col">Status</th>
                <th scope="col">Attempts</th>
                <th scope="col">Tokens</th>
                <th scope="col">Cost</th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(data.stages || {}).map(([name, stage]) => (
                <tr key={name}>
                  <th scope="row">{name}</th>
                  <td>{stage.node_type}</td>
                  <td>
                    <Status value={stage.status} />
                  </td>
                  <td>{stage.attempts}</td>
                  <td>{stage.tokens}</td>
                  <td>{Number(stage.cost || 0).toFixed(4)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {data.failure && <Json value={data.failure} label="Failure" />}
          <h2>Output</h2>
          <Json value={data.output} label="Task output" />
          <h2>Workspace changes</h2>
          <Json value={data.mutations} label="Workspace changes" />
        </>
      )}
    </DetailPage>
  );
}

function Runs() {
  const { data, error } = usePolled("/runs?limit=50", 3000);
  return (
    <>
      <h2>Runs</h2>
      <Problem error={error} />
      {data && (
        <table className="list">
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">Status</th>
              <th scope="col">Jobs</th>
              <th scope="col">Directive</th>
              <th scope="col">Launched</th>
            </tr>
          </thead>
          <tbody>
            {data.runs.map((r) => (
              <tr key={r.run_id}>
                <td>
                  <a href={`#/work/runs/${r.run_id}`}>{r.run_id}</a>
                </td>
                <td>
                  <Status value={r.status} />
                </td>
                <td>{(r.jobs || []).join(", ")}</td>
                <td>{r.directive}</td>
                <td>
                  {formatTime(r.launched_at)} by {r.launched_by}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function Run({ runId }) {
  const { data, error, reload } = usePolled(`/runs/${runId}/report`, 2000);
  const ended = data && !["pending", "running"].includes(data.status);
  return (
    <DetailPage id="run-title" title={`Run ${runId}`} back="#/work" backLabel="All pipelines and runs" error={error}>
      {data && (
        <>
          <p>
            <Status value={data.status} /> {data.llm_calls} LLM calls · ${Number(data.cost_usd || 0).toFixed(4)} ·{" "}
            {data.duration_seconds ?? "—"} s
          </p>
          <ActionButton
            disabled={ended}
            onAction={async () => {
              await api(`/runs/${runId}/cancel`, { method: "POST", body: {} });
              await reload();
            }}
          >
            Cancel run
          </ActionButton>
          <h2>Jobs</h2>
          <table className="list">
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Status</th>
                <th scope="col">Tokens</th>
                <th scope="col">Cost</th>
              </tr>
            </thead>
            <tbody>
              {(data.jobs || []).map((j) => (
                <tr key={j.index}>
                  <td>{j.job}</td>
                  <td>
                    <Status value={j.status} />
                  </td>
                  <td>{j.tokens}</td>
                  <td>{Number(j.cost_usd || 0).toFixed(4)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>Artifacts</h2>
          <ul>
            {(data.artifacts || []).map((a) => (
              <li key={a.key || a.name}>
                {a.url ? <a href={a.url}>{a.name || a.key}</a> : a.name || a.key}
              </li>
            ))}
          </ul>
          <h2>Tokens</h2>
          <Json value={data.tokens} label="Tokens" />
        </>
      )}
    </DetailPage>
  );
}
