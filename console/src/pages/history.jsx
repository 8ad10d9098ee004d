import { useState } from "react";
import { Field, Json, Problem } from "../components.jsx";
import { formatTime, usePolled } from "../hooks.js";

export function History({ route }) {
  const [project, setProject] = useState(route[0] || "");
  const [draft, setDraft] = useState(route[0] || "");
  const [at, setAt] = useState("");
  const [file, setFile] = useState(null);
  const tree = usePolled(project ? `/history/${encodeURIComponent(project)}/tree${at ? `?at=${encodeURIComponent(at)}` : ""}` : null, 5000);
  return (
    <section aria-labelledby="history-title">
      <h1 id="history-title">History</h1>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setProject(draft.trim());
          setFile(null);
        }}
      >
        <Field id="history-project" label="Project">
          <input id="history-project" value={draft} onChange={(e) => setDraft(e.target.value)} required />
        </Field>
        <Field id="history-at" label="At (ISO-8601 or Unix seconds; empty: now)">
          <input id="history-at" value={at} onChange={(e) => setAt(e.target.value)} />
        </Field>
        <button type="submit">Browse</button>
      </form>
      <Problem error={tree.error} />
      {tree.data && (
        <div className="split">
          <table className="list">
            <caption>
              {tree.data.files.length} files {tree.data.at ? `at ${formatTime(tree.data.at)}` : "now"}
            </caption>
            <thead>
              <tr>
                <th scope="col">File</th>
                <th scope="col">Version</th>
                <th scope="col">Changed</th>
                <th scope="col">By</th>
              </tr>
            </thead>
            <tbody>
              {tree.data.files.map((f) => (
                <tr key={f.path}>
                  <td>
                    <button type="button" className="link" onClick={() => setFile(f.path)} aria-pressed={file === f.path}>
                      {f.path}
                    </button>
                  </td>
                  <td>{f.version}</td>
                  <td>{formatTime(f.changed_at)}</td>
                  <td>{f.agent}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {file && <FileView project={project} path={file} at={at} />}
        </div>
      )}
    </section>
  );
}

function FileView({ project, path, at }) {
  const encoded = path.split("/").map(encodeURIComponent).join("/");
  const base = `/${encodeURIComponent(project)}`;
  const view = usePolled(
    at ? `/views${base}/history/${encodeURIComponent(at)}/${encoded}` : `/views${base}/current/${encoded}`,
    0,
  );
  const [from, setFrom] = useState("");
  const diff = usePolled(from ? `/history${base}/diff/${encoded}?from=${encodeURIComponent(from)}${at ? `&at=${encodeURIComponent(at)}` : ""}` : null, 0);
  return (
    <article aria-labelledby="file-title">
      <h2 id="file-title">{path}</h2>
      <Problem error={view.error} />
      {view.data && <pre className="file" tabIndex={0} aria-label={`${path}, annotated`}>{view.data.text ?? JSON.stringify(view.data, null, 2)}</pre>}
      <Field id="diff-from" label="Diff from instant (ISO-8601 or Unix seconds)">
        <input id="diff-from" value={from} onChange={(e) => setFrom(e.target.value)} />
      </Field>
      <Problem error={diff.error} />
      {diff.data &&
        (diff.data.diff !== undefined ? (
          <pre className="file diff" tabIndex={0} aria-label="Diff">
            {diff.data.diff || "(no change)"}
          </pre>
        ) : (
          <Json value={diff.data} label="Diff" />
        ))}
    </article>
  );
}
