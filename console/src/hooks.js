import { useCallback, useEffect, useRef, useState } from "react";
import { api } from "./api.js";

// Live data: fetched at once, then again every `everyMs` while the page shows it (the console's
// live updates are these polls of the API's read models; see the README).
export function usePolled(path, everyMs = 2000) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const alive = useRef(true);
  const load = useCallback(async () => {
    if (!path) return;
    try {
      const data = await api(path);
      if (alive.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (alive.current) setState((s) => ({ data: s.data, error, loading: false }));
    }
  }, [path]);
  useEffect(() => {
    alive.current = true;
    setState({ data: null, error: null, loading: Boolean(path) });
    load();
    const timer = everyMs ? setInterval(load, everyMs) : null;
    return () => {
      alive.current = false;
      if (timer) clearInterval(timer);
    };
  }, [load, everyMs, path]);
  return { ...state, reload: load };
}

export function formatTime(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  return new Date(seconds * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A list the API can wait on (`?wait=20&after=<cursor>`): read whole, then held open by the API
// until something new arrives (or 20 s pass), then read whole again. New entries show at once;
// entries that leave without this page's doing show within the wait.
export function useLongPolled(path, waitPath) {
  const [state, setState] = useState({ data: null, error: null });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    let alive = true;
    (async () => {
      while (alive) {
        try {
          const data = await api(path, { signal: controller.signal });
          if (!alive) return;
          setState({ data, error: null });
          await api(waitPath(data), { signal: controller.signal });
        } catch (error) {
          if (!alive) return;
          setState((s) => ({ data: s.data, error }));
          await pause(2000);
        }
      }
    })();
    return () => {
      alive = false;
      controller.abort();
    };
  }, [path, waitPath, generation]);
  return { ...state, reload: () => setGeneration((g) => g + 1) };
}
