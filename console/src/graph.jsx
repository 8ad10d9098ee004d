// An execution drawn from its ASL definition: dagre lays the states out, SVG draws them, each state
// coloured by its status and announced in its accessible name (colour is never the only cue).
import { Graph, layout } from "@dagrejs/dagre";
import { useMemo } from "react";

const NODE_W = 168;
const NODE_H = 44;
export const STATUS_LABEL = {
  not_run: "not run",
  running: "running",
  waiting: "waiting on a task token",
  succeeded: "succeeded",
  failed: "failed",
  caught: "failed, caught",
};

// The name drawn in a box; with the status line under it, it is also the button's accessible name
// (what is drawn is what is announced; the detail panel shows a long id in full).
const shown = (id) => (id.length > 22 ? `${id.slice(0, 21)}…` : id);

export function laidOut(nodes, edges) {
  const g = new Graph({ multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 24, ranksep: 36, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  const known = new Set(nodes.map((n) => n.id));
  for (const node of nodes) g.setNode(node.id, { width: NODE_W, height: NODE_H });
  edges.forEach((edge, i) => {
    if (known.has(edge.source) && known.has(edge.target)) g.setEdge(edge.source, edge.target, {}, `e${i}`);
  });
  layout(g);
  const size = g.graph();
  return {
    width: Math.ceil(size.width || NODE_W),
    height: Math.ceil(size.height || NODE_H),
    nodes: nodes.map((n) => ({ ...n, x: g.node(n.id).x, y: g.node(n.id).y })),
    edges: g.edges().map((e) => ({ id: e.name, points: g.edge(e).points })),
  };
}

export function ExecutionGraph({ nodes, edges, selected, onSelect }) {
  const drawn = useMemo(() => laidOut(nodes, edges), [nodes, edges]);
  return (
    <div className="graph-scroll" tabIndex={0} role="region" aria-label="State machine graph, scrollable">
      <svg
        className="graph"
        width={drawn.width}
        height={drawn.height}
        viewBox={`0 0 ${drawn.width} ${drawn.height}`}
        role="group"
        aria-label="State machine graph"
      >
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
            <path d="M0,0 L10,5 L0,10 z" className="arrowhead" />
          </marker>
        </defs>
        {drawn.edges.map((edge) => (
          <polyline
            key={edge.id}
            className="edge"
            points={edge.points.map((p) => `${p.x},${p.y}`).join(" ")}
            markerEnd="url(#arrow)"
          />
        ))}
        {drawn.nodes.map((node) => (
          <g
            key={node.id}
            className={`state state-${node.status}${selected === node.id ? " selected" : ""}`}
            transform={`translate(${node.x - NODE_W / 2},${node.y - NODE_H / 2})`}
            tabIndex={0}
            role="button"
            data-state={node.id}
            data-status={node.status}
            aria-pressed={selected === node.id}
            onClick={() => onSelect(node.id)}
            onKeyDown={(event) => {
              if (event.key === "Enter" || event.key === " ") {
                event.preventDefault();
                onSelect(node.id);
              }
            }}
          >
            <rect width={NODE_W} height={NODE_H} rx="6" />
            <text x={NODE_W / 2} y="18" textAnchor="middle" className="state-name">
              {shown(node.id)}
            </text>
            <text x={NODE_W / 2} y="34" textAnchor="middle" className="state-status">
              {node.type} · {STATUS_LABEL[node.status]}
            </text>
          </g>
        ))}
      </svg>
    </div>
  );
}
