// The console's build: esbuild bundles src/main.jsx (React, RJSF, dagre) and src/styles.css into
// content-hashed files in dist/, and writes dist/index.html naming them. Same sources, same lock
// file -> the same bytes (no timestamps, no absolute paths).
import { build } from "esbuild";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename } from "node:path";

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist");
const result = await build({
  entryPoints: { app: "src/main.jsx" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome110", "firefox110", "safari16"],
  jsx: "automatic",
  entryNames: "[name]-[hash]",
  outdir: "dist",
  metafile: true,
  legalComments: "external",
  define: { "process.env.NODE_ENV": '"production"' },
  alias: { "@rjsf/validator-ajv8": "./src/no-ajv.js" },
  logLevel: "warning",
});
const outputs = Object.keys(result.metafile.outputs).map((path) => basename(path));
const script = outputs.find((name) => name.endsWith(".js"));
const style = outputs.find((name) => name.endsWith(".css"));
const page = readFileSync("index.html", "utf8").replace("%SCRIPT%", script).replace("%STYLE%", style);
writeFileSync("dist/index.html", page);
console.log(`console built: ${outputs.join(", ")}`);
