// Summarises V8 .cpuprofile files (node --cpu-prof; scripts/bench-cold.sh BENCH_CPU_PROF=DIR):
// the share of samples per function (self time), heaviest first, and per coarse category.
//
//   node scripts/lib/cpuprofile-top.mjs FILE.cpuprofile... [--top 30]
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const ti = args.indexOf('--top');
const top = ti >= 0 ? Number(args.splice(ti, 2)[1]) : 30;
const self = new Map();
let total = 0;
for (const file of args) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const counts = new Map();
  for (const s of p.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
  for (const [id, c] of counts) {
    const f = byId.get(id).callFrame;
    const where = f.url ? `${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^node:/, '')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + c);
    total += c;
  }
}
const pct = (c) => ((100 * c) / total).toFixed(1).padStart(5);
const rows = [...self].sort((a, b) => b[1] - a[1]);
console.log(`${total} samples`);
for (const [k, c] of rows.slice(0, top)) console.log(`${pct(c)} %  ${k}`);
const cats = new Map();
const cat = (k) =>
  k.startsWith('(idle)') ? 'idle' : k.startsWith('(garbage collector)') ? 'gc' : k.startsWith('(program)') ? 'program (native, outside JS)'
    : /dist\/src\//.test(k) ? 'sreg' : /node_modules\//.test(k) ? 'node_modules' : /internal\/|^\w+ (fs|net|stream|events|buffer|crypto|http)/.test(k) || k.includes('internal/') ? 'node core' : 'other';
for (const [k, c] of rows) cats.set(cat(k), (cats.get(cat(k)) ?? 0) + c);
console.log('-- by category');
for (const [k, c] of [...cats].sort((a, b) => b[1] - a[1])) console.log(`${pct(c)} %  ${k}`);
