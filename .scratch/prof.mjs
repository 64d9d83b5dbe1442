// Usage: node prof.mjs file.cpuprofile [topN] — self time by function and by file, plus inclusive by function.
import fs from 'node:fs';
const prof = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const top = Number(process.argv[3] ?? 40);
const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const self = new Map();
const dt = prof.timeDeltas; const samples = prof.samples;
for (let i = 0; i < samples.length; i++) self.set(samples[i], (self.get(samples[i]) ?? 0) + (dt[i] ?? 0));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const name = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/^.*node_modules\//, 'nm/').replace(/^file:\/\/\/work\/main\//, '')}:${n.callFrame.lineNumber + 1}`;
const byFn = new Map(); const byFile = new Map(); const incl = new Map();
for (const [id, t] of self) {
  const n = nodes.get(id);
  byFn.set(name(n), (byFn.get(name(n)) ?? 0) + t);
  const f = n.callFrame.url.replace(/^.*node_modules\//, 'nm/').replace(/^file:\/\/\/work\/main\//, '').split('/').slice(0, 3).join('/') || n.callFrame.functionName;
  byFile.set(f, (byFile.get(f) ?? 0) + t);
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) { const k = name(nodes.get(cur)); if (!seen.has(k)) { seen.add(k); incl.set(k, (incl.get(k) ?? 0) + t); } }
}
const show = (title, m) => { console.log(`\n== ${title}`); for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(100 * v / total).toFixed(1).padStart(5)}%  ${k}`); };
show('self by function', byFn); show('self by file', byFile); show('inclusive', incl);
// Optional focus: FOCUS=<function name substring> prints inclusive times of functions beneath it.
if (process.env.FOCUS) {
  const under = new Map(); let focusTotal = 0;
  for (const [id, t] of self) {
    const chain = []; for (let cur = id; cur !== undefined; cur = parent.get(cur)) chain.push(name(nodes.get(cur)));
    const at = chain.findIndex((k) => k.includes(process.env.FOCUS));
    if (at < 0) continue;
    focusTotal += t;
    const seen = new Set();
    for (const k of chain.slice(0, at)) if (!seen.has(k)) { seen.add(k); under.set(k, (under.get(k) ?? 0) + t); }
    under.set('(self) ' + chain[at], (under.get('(self) ' + chain[at]) ?? 0) + (at === 0 ? t : 0));
  }
  console.log(`\n== beneath ${process.env.FOCUS}: ${(100 * focusTotal / total).toFixed(1)}% of all`);
  for (const [k, v] of [...under].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(100 * v / focusTotal).toFixed(1).padStart(5)}%  ${k}`);
}
