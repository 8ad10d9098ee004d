import Form from "@rjsf/core";
import { useState } from "react";
import { ApiError, api, randomHex } from "../api.js";
import { Problem } from "../components.jsx";
import { formatTime, useLongPolled, usePolled } from "../hooks.js";
import { serverErrors, validator } from "../validator.js";

const URGENCY = { urgent: 0, high: 1, normal: 2, low: 3 };
const PENDING = "/elicitation/pending?limit=100";
const waitForNew = (page) => `/elicitation/pending?limit=1&wait=20&after=${encodeURIComponent(page.cursor)}`;

export function Inbox({ route }) {
  const { data, error, reload } = useLongPolled(PENDING, waitForNew);
  const answered = usePolled("/elicitation/answered?limit=20", 3000);
  const pending = [...(data?.elicitations || [])].sort(
    (a, b) => (URGENCY[a.priority] ?? 9) - (URGENCY[b.priority] ?? 9) || a.created_at - b.created_at,
  );
  const selectedId = route[0] || pending[0]?.elicitation_id;
  const selected = pending.find((e) => e.elicitation_id === selectedId);
  return (
    <section aria-labelledby="inbox-title">
      <h1 id="inbox-title">Inbox</h1>
      <Problem error={error} />
      <div className="split">
        <div>
          <h2>Pending ({pending.length})</h2>
          {pending.length === 0 && <p>Nothing is waiting for you.</p>}
          <ul className="cards">
            {pending.map((e) => (
              <li key={e.elicitation_id} className={e.elicitation_id === selectedId ? "current" : ""}>
                <a href={`#/inbox/${e.elicitation_id}`} data-elicitation={e.elicitation_id}>
                  <span className={`badge badge-${e.priority}`}>{e.priority}</span> {e.message}
                </a>
                <span className="meta">
                  from {e.from_agent}, expires {formatTime(e.expires_at)}
                </span>
              </li>
            ))}
          </ul>
          <h2>Answered</h2>
          <Problem error={answered.error} />
          <AnsweredList answered={answered.data?.elicitations || []} />
        </div>
        <div>
          {selected ? (
            <Answer
              key={selected.elicitation_id}
              elicitation={selected}
              onDone={() => {
                window.location.hash = "#/inbox";
                reload();
                answered.reload();
              }}
            />
          ) : (
            route[0] && <p>This elicitation is no longer pending.</p>
          )}
        </div>
      </div>
    </section>
  );
}

function AnsweredList({ answered }) {
  if (answered.length === 0) return <p>Nothing answered yet.</p>;
  return (
    <ul className="cards answered">
      {answered.map((a) => (
        <li key={a.elicitation_id} data-answered={a.elicitation_id}>
          <span>
            {a.message} — <strong>{a.status}</strong>
          </span>
          <span className="meta">
            to {a.from_agent}, {formatTime(a.finished_at)} ·{" "}
            {a.signature_valid ? "signature verified" : "signature does NOT verify"}
          </span>
        </li>
      ))}
    </ul>
  );
}

function Answer({ elicitation, onDone }) {
  const [formData, setFormData] = useState(undefined);
  const [extraErrors, setExtraErrors] = useState(undefined);
  const [problem, setProblem] = useState(null);
  const respond = async (action, data) => {
    setProblem(null);
    setExtraErrors(undefined);
    try {
      const result = await api("/elicitation/respond", {
        method: "POST",
        body: { elicitation_id: elicitation.elicitation_id, action, data, nonce: randomHex(16) },
      });
      onDone(result);
    } catch (error) {
      if (error instanceof ApiError && error.details?.violations) setExtraErrors(serverErrors(error.details.violations));
      setProblem(error);
    }
  };
  return (
    <article aria-labelledby="answer-title" className="answer">
      <h2 id="answer-title">{elicitation.message}</h2>
      <p className="meta">
        From {elicitation.from_agent} · {elicitation.priority} · expires {formatTime(elicitation.expires_at)}
      </p>
      <Form
        schema={elicitation.schema}
        validator={validator}
        formData={formData}
        onChange={({ formData: next }) => setFormData(next)}
        onSubmit={({ formData: data }) => respond("accept", data)}
        extraErrors={extraErrors}
        showErrorList="top"
        noHtml5Validate
        idPrefix={`answer-${elicitation.elicitation_id.slice(0, 8)}`}
      >
        <div className="buttons">
          <button type="submit">Accept</button>
          <button type="button" className="secondary" onClick={() => respond("decline", undefined)}>
            Decline
          </button>
        </div>
      </Form>
      <Problem error={problem} />
    </article>
  );
}
