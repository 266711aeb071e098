// The tables of bench-mount.sh's report, from its results file (one row per measurement:
// kind adapter run seconds bytes peak_kib load1 client_cpu_s emulator_cpu_s mount_cpu_s).
//   node scripts/lib/mount-report.mjs RESULTS SIZE_BYTES N CATALOG_N "ADAPTER..."
import { readFileSync } from 'node:fs';

const [file, sizeText, n, catN, adapterText] = process.argv.slice(2);
const size = Number(sizeText);
const gib = size / 2 ** 30;
const adapters = adapterText.split(/\s+/).filter(Boolean);
const num = (x) => (x === '' || x === undefined ? undefined : Number(x));
const rows = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => {
  const [kind, adapter, run, secs, bytes, peak, load, cpuC, cpuE, cpuM] = l.split('\t');
  return { kind, adapter, run: Number(run), secs: Number(secs), bytes: num(bytes), peak: peak === '' ? undefined : Number(peak) / 1024, load, cpuC: Number(cpuC), cpuE: Number(cpuE), cpuM: num(cpuM) };
});
const of = (k, a = '') => rows.filter((r) => r.kind === k && r.adapter === a);
const median = (xs) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const med = (k, a = '') => median(of(k, a).map((r) => r.secs));
const medCpu = (k, a) => median(of(k, a).map((r) => r.cpuM).filter((x) => x !== undefined));
const mbs = (s) => (size / s / 1e6).toFixed(0);
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');
const yes = (b) => (b ? '**met**' : '**NOT met**');
const peakOf = (a) => Math.max(...rows.filter((r) => r.adapter === a).map((r) => r.peak ?? 0));

const perAdapter = [
  ['cold', 'cold read, shaped emulator: dd bs=1M from a fresh mount', true],
  ['second', 'second read in the same mount (page cache as the adapter leaves it)', true],
  ['warm', 'warm read: remount, cache kept, page cache dropped', true],
  ['cold-cpu', 'cold read, unshaped emulator', true],
  ['start-mount', 'container start from a fresh mount (cold cache)', false],
  ['cp', 'cp IMG MNT/bench/ (until cp returns)', true],
  ['cp+unmount', 'cp, then sreg unmount (all uploaded)', true],
  ['first-mount', `first sreg mount of a ${catN}-image catalog, until ls answers`, false],
  ['ls-lR-first', `ls -lR of ${catN} images, first after mount`, false],
  ['ls-lR-warm', 'ls -lR again (warm)', false],
  ['remount-ls', 'sreg mount with the catalog synced, until ls answers', false],
];
const cell = (k, a, rate) => {
  const s = med(k, a);
  if (!Number.isFinite(s)) return '–';
  const cpu = medCpu(k, a);
  const parts = [`${f2(s)} s`];
  if (rate) parts.push(`${mbs(s)} MB/s`);
  if (Number.isFinite(cpu) && ['cold', 'second', 'warm', 'cold-cpu'].includes(k)) parts.push(`CPU ${f2(cpu / gib)} s/GiB`);
  return parts.join(', ');
};
let md = `## Results (medians of every round)\n\n| measurement | ${adapters.join(' | ')} |${adapters.length === 2 ? ` ${adapters[0]} / ${adapters[1]} (time) |` : ''}\n|---|${adapters.map(() => '---|').join('')}${adapters.length === 2 ? '---|' : ''}\n`;
for (const [k, label, rate] of perAdapter) {
  if (!adapters.some((a) => of(k, a).length)) continue;
  md += `| ${label} | ${adapters.map((a) => cell(k, a, rate)).join(' | ')} |`;
  if (adapters.length === 2) md += ` ${f2(med(k, adapters[0]) / med(k, adapters[1]))} |`;
  md += '\n';
}
md += `| peak RSS of any mount (MiB) | ${adapters.map((a) => peakOf(a).toFixed(1)).join(' | ')} |${adapters.length === 2 ? ' |' : ''}\n`;

const floorCurls = median(of('floor-curls').map((r) => r.cpuC)) / gib;
const floorSha = median(of('floor-sha256').map((r) => r.cpuC)) / gib;
const floor = floorCurls + floorSha;
md += '\n## Baselines (medians)\n\n| baseline | s | MB/s | CPU |\n|---|---|---|---|\n';
md += `| B: ${n} ranged curls at once → /dev/null, shaped | ${f2(med('B'))} | ${mbs(med('B'))} | – |\n`;
md += `| local: dd bs=1M of the image, page cache dropped | ${f2(med('local'))} | ${mbs(med('local'))} | – |\n`;
md += `| page: the same dd from the page cache | ${f2(med('page'))} | ${mbs(med('page'))} | – |\n`;
md += `| floor: ${n} ranged curls, unshaped | ${f2(med('floor-curls'))} | ${mbs(med('floor-curls'))} | ${f2(floorCurls)} s/GiB |\n`;
md += `| floor: openssl dgst -sha256 of the image (page cache) | ${f2(med('floor-sha256'))} | ${mbs(med('floor-sha256'))} | ${f2(floorSha)} s/GiB |\n`;
md += `| container start after sreg pull (pull + run from local disk) | ${f2(med('start-pull'))} | – | – |\n`;
md += `| sreg push --force IMG | ${f2(med('push'))} | ${mbs(med('push'))} | – |\n`;
md += `| reference: sreg status (node start-up, no mount) | ${f2(med('node-start'))} | – | – |\n`;

md += `\n## Aims (issue 10), per adapter\n\n| aim | ${adapters.join(' | ')} |\n|---|${adapters.map(() => '---|').join('')}\n`;
const aim = (label, f) => {
  md += `| ${label} | ${adapters.map((a) => f(a)).join(' | ')} |\n`;
};
aim('warm read / local dd (throughput) ≥ 0.90', (a) => { const r = med('local') / med('warm', a); return `${f2(r)}: ${yes(r >= 0.9)}`; });
aim('second read / page-cache dd (throughput) ≥ 0.90', (a) => { const r = med('page') / med('second', a); return `${f2(r)}: ${yes(r >= 0.9)}`; });
aim(`cold read CPU (unshaped) / floor (${f2(floor)} s/GiB) ≤ 1.6`, (a) => { const c = medCpu('cold-cpu', a) / gib; const r = c / floor; return `${f2(c)} s/GiB = ${f2(r)}×: ${yes(r <= 1.6)}`; });
aim('cold read, shaped / B (throughput) ≥ 0.90', (a) => { const r = med('B') / med('cold', a); return `${f2(r)}: ${yes(r >= 0.9)}`; });
aim('sreg mount → ls answers, catalog synced ≤ 0.3 s', (a) => { const s = med('remount-ls', a); return `${f2(s)} s: ${yes(s <= 0.3)}`; });
aim('peak RSS of the mount ≤ 120 MiB', (a) => { const p = peakOf(a); return `${p.toFixed(1)} MiB: ${yes(p <= 120)}`; });
aim('cold read: bytes fetched / bytes read (worst) ≤ 1.05', (a) => { const x = Math.max(...of('cold', a).map((r) => r.bytes / size)); return `${x.toFixed(4)}: ${yes(x <= 1.05)}`; });
aim('container start: share of the image fetched (worst)', (a) => `${(100 * Math.max(...of('start-mount', a).map((r) => r.bytes / size))).toFixed(2)} %`);

md += '\n## Every run\n\n| measurement | adapter | run | seconds | bytes moved | mount peak RSS (MiB) | load1 before | client CPU s | emulator CPU s | mount CPU s |\n|---|---|---|---|---|---|---|---|---|---|\n';
for (const r of rows) md += `| ${r.kind} | ${r.adapter || '–'} | ${r.run} | ${f2(r.secs)} | ${r.bytes ?? '–'} | ${r.peak === undefined ? '–' : r.peak.toFixed(1)} | ${r.load} | ${f2(r.cpuC)} | ${f2(r.cpuE)} | ${r.cpuM === undefined ? '–' : f2(r.cpuM)} |\n`;
process.stdout.write(md);
