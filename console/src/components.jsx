import { useState } from "react";

export function Problem({ error }) {
  if (!error) return null;
  return (
    <p className="problem" role="alert">
      {error.status ? `${error.status} ` : ""}
      {error.message}
    </p>
  );
}

export function Json({ value, label }) {
  return (
    <pre className="json" tabIndex={0} aria-label={label}>
      {value === undefined || value === null ? "—" : JSON.stringify(value, null, 2)}
    </pre>
  );
}

export function Status({ value }) {
  return <span className={`badge badge-${String(value).toLowerCase()}`}>{String(value)}</span>;
}

// A button that runs an async action, shows it is busy, and reports its error beside it.
export function ActionButton({ onAction, children, className = "", disabled = false, ...rest }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  return (
    <span className="action">
      <button
        type="button"
        className={className}
        disabled={busy || disabled}
        onClick={async () => {
          setBusy(true);
          setError(null);
          try {
            await onAction();
          } catch (e) {
            setError(e);
          } finally {
            setBusy(false);
          }
        }}
        {...rest}
      >
        {children}
      </button>
      <Problem error={error} />
    </span>
  );
}

export function Field({ id, label, children }) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children}
    </div>
  );
}

// A page about one object: its heading, the way back to the list it came from, and a load error.
export function DetailPage({ id, title, back, backLabel, error, children }) {
  return (
    <section aria-labelledby={id}>
      <h1 id={id}>{title}</h1>
      {back && (
        <p>
          <a href={back}>{backLabel}</a>
        </p>
      )}
      <Problem error={error} />
      {children}
    </section>
  );
}
