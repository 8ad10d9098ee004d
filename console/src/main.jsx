import "./styles.css";
import { useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { resumeSession, signIn, signOut } from "./api.js";
import { Problem } from "./components.jsx";
import { Executions } from "./pages/executions.jsx";
import { Fleet } from "./pages/fleet.jsx";
import { Gate } from "./pages/gate.jsx";
import { History } from "./pages/history.jsx";
import { Inbox } from "./pages/inbox.jsx";
import { Overview } from "./pages/overview.jsx";
import { Work } from "./pages/work.jsx";

const PAGES = [
  { path: "overview", title: "Overview", component: Overview, admin: true },
  { path: "executions", title: "Executions", component: Executions, admin: true },
  { path: "inbox", title: "Inbox", component: Inbox },
  { path: "gate", title: "Gate", component: Gate, admin: true },
  { path: "work", title: "Pipelines & runs", component: Work },
  { path: "fleet", title: "Fleet", component: Fleet, admin: true },
  { path: "history", title: "History", component: History },
];

function useRoute() {
  const read = () => window.location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const changed = () => setRoute(read());
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return route;
}

function SignIn({ onSignedIn }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  return (
    <main className="signin" id="main">
      <h1>Lighthouse console</h1>
      <p>Sign in with a human or admin agent&apos;s id and secret. The secret signs a one-time proof in this page and is never sent.</p>
      <form
        onSubmit={async (event) => {
          event.preventDefault();
          const form = new FormData(event.currentTarget);
          setBusy(true);
          setError(null);
          try {
            onSignedIn(await signIn(String(form.get("agent_id")).trim(), String(form.get("secret"))));
          } catch (e) {
            setError(e);
          } finally {
            setBusy(false);
          }
        }}
      >
        <div className="field">
          <label htmlFor="agent_id">Agent id</label>
          <input id="agent_id" name="agent_id" autoComplete="username" required />
        </div>
        <div className="field">
          <label htmlFor="secret">Secret</label>
          <input id="secret" name="secret" type="password" autoComplete="current-password" required />
        </div>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        <Problem error={error} />
      </form>
    </main>
  );
}

function Shell({ session, onSignedOut }) {
  const route = useRoute();
  const visible = PAGES.filter((p) => !p.admin || session.role === "admin");
  const page = visible.find((p) => p.path === route[0]) || visible.find((p) => p.path === (session.role === "admin" ? "overview" : "inbox"));
  const Page = page.component;
  useEffect(() => {
    document.title = `${page.title} · Lighthouse console`;
  }, [page]);
  return (
    <>
      <a className="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Lighthouse</span>
        <nav aria-label="Console pages">
          <ul>
            {visible.map((p) => (
              <li key={p.path}>
                <a href={`#/${p.path}`} aria-current={p === page ? "page" : undefined}>
                  {p.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span className="who">
          {session.agent_id} ({session.role})
          <button type="button" className="link" onClick={async () => { await signOut(); onSignedOut(); }}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        <Page route={route.slice(1)} session={session} />
      </main>
    </>
  );
}

function App() {
  const [session, setSession] = useState(undefined);
  useEffect(() => {
    resumeSession().then(setSession, () => setSession(null));
  }, []);
  if (session === undefined) return <p className="loading">Loading…</p>;
  if (session === null) return <SignIn onSignedIn={setSession} />;
  return <Shell session={session} onSignedOut={() => setSession(null)} />;
}

createRoot(document.getElementById("root")).render(<App />);
