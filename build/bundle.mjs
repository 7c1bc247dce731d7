// Bundles numactlx after tsc (`npm run build`): one ES module per thread's entry —
// numactlx.js (launcher/entry.ts), engine-worker.js, tracer-worker.js, checksum-worker.js —
// and the chunks they share, side by side in dist/bundle/. Node loads each of a graph's
// ≈ 40 modules on its own (resolve, read, link), and a session loads three graphs, each
// in its own isolate (docs/BENCHMARKS.md §5c).
//
// Left outside the bundle: koffi (a native addon, loaded from node_modules as before) and
// node-cron (it finds files of its own next to its modules). launcher/own-files.ts finds
// the worker modules beside itself when NUMACTLX_BUNDLE is defined.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const outdir = path.join(dist, 'bundle');
// The workers' entries are launcher/own-files.ts's (tsc's output of it, which finds them by the same names).
const { WORKER_ENTRIES } = await import(pathToFileURL(path.join(dist, 'launcher/own-files.js')).href);
const entries = { numactlx: 'launcher/entry.js', ...WORKER_ENTRIES };

fs.rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: Object.fromEntries(Object.entries(entries).map(([name, file]) => [name, path.join(dist, file)])),
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunk-[hash]',
  external: ['koffi', 'node-cron'],
  define: { NUMACTLX_BUNDLE: 'true' },
  // Bundled CommonJS (minimist) calls require() for Node's own modules.
  banner: { js: "import { createRequire as numactlxRequire } from 'node:module'; const require = numactlxRequire(import.meta.url);" },
  logLevel: 'warning',
});
