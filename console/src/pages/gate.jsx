import { useEffect, useState } from "react";
import { ApiError, api } from "../api.js";
import { Field, Json, Problem, Status } from "../components.jsx";
import { formatTime, usePolled } from "../hooks.js";

export function Gate({ route }) {
  return (
    <section aria-labelledby="gate-title">
      <h1 id="gate-title">Gate</h1>
      {route[0] ? <Round requestId={route[0]} /> : <Audit />}
      <PolicyEditor />
    </section>
  );
}

function Audit() {
  const { data, error } = usePolled("/validation/audit?agent=*&limit=200", 2000);
  const [agent, setAgent] = useState("");
  const [decision, setDecision] = useState("");
  const [rule, setRule] = useState("");
  const entries = (data?.entries || []).filter(
    (e) =>
      (!agent || e.agent.includes(agent)) &&
      (!decision || (e.decision || "awaiting_experts") === decision) &&
      (!rule || e.matched_rules.some((r) => r.includes(rule))),
  );
  return (
    <>
      <h2>Decisions</h2>
      <div className="filters">
        <Field id="audit-agent" label="Agent">
          <input id="audit-agent" value={agent} onChange={(e) => setAgent(e.target.value)} />
        </Field>
        <Field id="audit-decision" label="Decision">
          <select id="audit-decision" value={decision} onChange={(e) => setDecision(e.target.value)}>
            <option value="">any</option>
            <option value="approved">approved</option>
            <option value="blocked">blocked</option>
            <option value="escalate">escalate</option>
            <option value="awaiting_experts">awaiting experts</option>
          </select>
        </Field>
        <Field id="audit-rule" label="Rule">
          <input id="audit-rule" value={rule} onChange={(e) => setRule(e.target.value)} />
        </Field>
      </div>
      <Problem error={error} />
      <table className="list">
        <caption>{entries.length} decisions, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Requested</th>
            <th scope="col">Agent</th>
            <th scope="col">Tool</th>
            <th scope="col">Decision</th>
            <th scope="col">Rules</th>
            <th scope="col">Reason</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr key={e.request_id}>
              <td>
                <a href={`#/gate/${e.request_id}`}>{formatTime(e.requested_at)}</a>
              </td>
              <td>{e.agent}</td>
              <td>{e.tool_name}</td>
              <td>
                <Status value={e.decision || e.status} />
              </td>
              <td>{e.matched_rules.join(", ") || "—"}</td>
              <td>{e.reason}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function Round({ requestId }) {
  const { data, error } = usePolled(`/validate/${requestId}`, 2000);
  return (
    <>
      <p>
        <a href="#/gate">All decisions</a>
      </p>
      <h2>Request {requestId}</h2>
      <Problem error={error} />
      {data && (
        <>
          <p>
            <Status value={data.decision || data.status} /> {data.reason}
          </p>
          <h3>Expert votes</h3>
          <table className="list">
            <thead>
              <tr>
                <th scope="col">Expert</th>
                <th scope="col">Vote</th>
                <th scope="col">Confidence</th>
                <th scope="col">Reason</th>
              </tr>
            </thead>
            <tbody>
              {(data.votes || []).map((v, i) => (
                <tr key={`${v.expert}-${i}`}>
                  <td>{v.expert}</td>
                  <td>{v.decision}</td>
                  <td>{v.confidence}</td>
                  <td>{v.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3>Consensus</h3>
          <Json value={data.consensus} label="Consensus" />
        </>
      )}
    </>
  );
}

function PolicyEditor() {
  const [policy, setPolicy] = useState(null);
  const [text, setText] = useState("");
  const [problem, setProblem] = useState(null);
  const [saved, setSaved] = useState(null);
  useEffect(() => {
    api("/validation/policies").then((p) => {
      setPolicy(p);
      setText(p.policies);
    }, setProblem);
  }, []);
  const save = async () => {
    setProblem(null);
    setSaved(null);
    try {
      const stored = await api("/validation/policies", { method: "PUT", body: { policies: text } });
      setPolicy(stored);
      setSaved(`Saved as version ${stored.version}.`);
    } catch (error) {
      setProblem(error instanceof ApiError ? error : new Error(String(error)));
    }
  };
  return (
    <>
      <h2>Cedar policies</h2>
      {policy && (
        <p className="meta">
          Version {policy.version}, by {policy.updated_by || "—"} at {formatTime(policy.updated_at)}. Each save is
          parsed and validated against the Lighthouse Cedar schema before it is stored; an invalid one changes nothing.
        </p>
      )}
      <Field id="policies" label="Policies">
        <textarea
          id="policies"
          value={text}
          rows={14}
          spellCheck={false}
          aria-invalid={problem ? "true" : undefined}
          aria-describedby={problem ? "policy-problem" : undefined}
          onChange={(e) => setText(e.target.value)}
        />
      </Field>
      <button type="button" onClick={save}>
        Validate and save
      </button>
      {saved && (
        <p role="status" className="ok">
          {saved}
        </p>
      )}
      {problem && (
        <div id="policy-problem">
          <Problem error={problem} />
          {problem.details && Object.keys(problem.details).length > 0 && <Json value={problem.details} label="Policy errors" />}
        </div>
      )}
    </>
  );
}
