import { Problem } from "../components.jsx";
import { formatTime, usePolled } from "../hooks.js";

export function Overview() {
  const { data, error } = usePolled("/overview", 5000);
  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title">Overview</h1>
      <p>The figures the template&apos;s CloudWatch alarms watch on AWS, read here from the platform&apos;s own read models and queues.</p>
      <Problem error={error} />
      {data && (
        <>
          <table className="figures">
            <caption>As of {formatTime(data.at)}</caption>
            <thead>
              <tr>
                <th scope="col">Figure</th>
                <th scope="col">Value</th>
                <th scope="col">Alarm</th>
                <th scope="col">Source</th>
              </tr>
            </thead>
            <tbody>
              {data.figures.map((f) => (
                <tr key={f.name} className={f.breaching ? "breaching" : ""} data-figure={f.name}>
                  <th scope="row">{f.name}</th>
                  <td>
                    {f.value === null ? "not measured" : f.value} <span className="unit">{f.unit}</span>
                  </td>
                  <td>{f.alarm ? `${f.alarm}: ${f.breaching ? "would alarm" : "ok"}` : "—"}</td>
                  <td className="source">{f.source}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
