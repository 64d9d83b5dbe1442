// Usage: node tree.mjs file.cpuprofile [minPercent] [rootSubstring] — top-down inclusive tree.
import fs from 'node:fs';
const prof = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const min = Number(process.argv[3] ?? 1);
const rootName = process.argv[4];
const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map();
for (let i = 0; i < prof.samples.length; i++) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
const incl = new Map();
const total = (id) => { if (incl.has(id)) return incl.get(id); const n = nodes.get(id); let t = self.get(id) ?? 0; for (const c of n.children ?? []) t += total(c); incl.set(id, t); return t; };
const rootId = prof.nodes[0].id; const all = total(rootId);
const idle = prof.nodes.filter((n) => n.callFrame.functionName === '(idle)').reduce((a, n) => a + (self.get(n.id) ?? 0), 0);
const busy = all - idle;
const name = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/^.*node_modules\//, 'nm/').replace(/^file:\/\/\/work\/main\//, '')}:${n.callFrame.lineNumber + 1}`;
function walk(id, depth) {
  const n = nodes.get(id); const t = total(id);
  if (100 * t / busy < min) return;
  console.log(`${(100 * t / busy).toFixed(1).padStart(5)}% ${'  '.repeat(depth)}${name(n)}${self.get(id) ? ` [self ${(100 * self.get(id) / busy).toFixed(1)}]` : ''}`);
  for (const c of [...(n.children ?? [])].sort((a, b) => total(b) - total(a))) walk(c, depth + 1);
}
let roots = [rootId];
if (rootName) roots = prof.nodes.filter((n) => name(n).includes(rootName)).map((n) => n.id);
console.log(`busy ${(busy / 1e6).toFixed(2)} s of ${(all / 1e6).toFixed(2)} s`);
for (const r of roots) walk(r, 0);
