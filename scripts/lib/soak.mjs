// The soak's workers and its final comparison (run by scripts/soak-mount.sh; not on its own).
//
//   node soak.mjs fsx  MNTDIR EXPDIR SECONDS SEED   random write/read/truncate/fsync on 3 files
//   node soak.mjs tree MNTDIR EXPDIR SECONDS SEED   mkdir, create, write, rename, unlink, rmdir…
//   node soak.mjs compare EXPROOT URL               EXPROOT (local) against Dropbox, by hash
//
// A worker applies every operation to the mount (MNTDIR) and to a local copy (EXPDIR) with the
// same calls; the two must give the same outcome (success or the same errno) and every read
// from the mount must equal the local copy's bytes. It prints one JSON line: {ops: {kind: n},
// mismatches: [...]}. The token reaches `compare` through $DBX_TOKEN only. Synchronous calls
// are fine here: each worker is its own process, and blocking it is the point.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

const [mode, a1, a2, a3, a4] = process.argv.slice(2);
let seed = Number(a4 ?? 1) >>> 0 || 1;
const rnd = () => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed / 2 ** 32; };
const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
const int = (n) => Math.floor(rnd() * n);
const ops = {};
const mismatches = [];
const count = (k) => { ops[k] = (ops[k] ?? 0) + 1; };
const bad = (msg) => { if (mismatches.length < 50) mismatches.push(msg); };

// both(kind, desc, fn): fn(root) on the mount and on the copy; outcomes must agree.
function both(kind, desc, fn) {
  let rm; let re;
  try { rm = { v: fn(a1) }; } catch (e) { rm = { err: e.code ?? String(e) }; }
  try { re = { v: fn(a2) }; } catch (e) { re = { err: e.code ?? String(e) }; }
  count(kind);
  if (rm.err !== re.err) bad(`${desc}: mount ${rm.err ?? 'ok'}, expected ${re.err ?? 'ok'}`);
  if (trace) {
    console.error(`${desc} -> mount ${rm.err ?? 'ok'}`);
    const lm = walk(a1).join(' '); const le = walk(a2).join(' ');
    if (lm !== le) { console.error(`DIVERGED\nmount:    ${lm}\nexpected: ${le}`); process.exit(3); }
  }
  return [rm, re];
}
// SOAK_TRACE=1: log every operation to stderr and stop at the first listing of the worker's
// subfolder that differs from the copy's (slow; for finding a minimal repro).
const trace = process.env.SOAK_TRACE === '1';
function walk(r, rel = '') {
  return fs.readdirSync(path.join(r, rel), { withFileTypes: true }).flatMap((e) => {
    const p = path.join(rel, e.name);
    return e.isDirectory() ? [`${p}/`, ...walk(r, p)] : [`${p} ${fs.statSync(path.join(r, p)).size}`];
  }).sort();
}
const data = (n) => { const b = crypto.randomBytes(Math.min(n, 64)); const out = Buffer.alloc(n); for (let i = 0; i < n; i += b.length) b.copy(out, i); return out; };

function fsx(deadline) {
  const names = ['f0.bin', 'f1.bin', 'f2.bin'];
  const fds = new Map(); // name -> [mountFd, expFd]
  const open = (n) => {
    if (!fds.has(n)) {
      const [m, e] = both('open', `open ${n}`, (r) => fs.openSync(path.join(r, n), fs.constants.O_RDWR | fs.constants.O_CREAT));
      if (m.err || e.err) return null;
      fds.set(n, [m.v, e.v]);
    }
    return fds.get(n);
  };
  const close = (n) => {
    const f = fds.get(n); if (!f) return;
    fds.delete(n);
    let err = null;
    try { fs.closeSync(f[0]); } catch (e) { err = e.code; }
    fs.closeSync(f[1]);
    count('close');
    if (err) bad(`close ${n}: mount ${err}`);
  };
  while (Date.now() < deadline) {
    const n = pick(names);
    const kind = pick(['write', 'write', 'write', 'read', 'read', 'read', 'truncate', 'fsync', 'close', 'reopen-read']);
    const f = kind === 'reopen-read' ? null : open(n);
    if (kind !== 'reopen-read' && !f) continue;
    try { fsxOp(kind, n, f, close); } catch (e) { count(kind); bad(`${kind} ${n}: ${e.code ?? e}`); }
  }
  for (const n of [...fds.keys()]) close(n);
}

function fsxOp(kind, n, f, close) {
  {
    if (kind === 'write') {
      const off = int(300_000); const buf = data(1 + int(65_536));
      const [m] = [fs.writeSync(f[0], buf, 0, buf.length, off)];
      fs.writeSync(f[1], buf, 0, buf.length, off);
      count('write');
      if (m !== buf.length) bad(`write ${n} @${off}: short write ${m}/${buf.length}`);
    } else if (kind === 'read') {
      const size = fs.fstatSync(f[1]).size;
      const msize = fs.fstatSync(f[0]).size;
      if (msize !== size) bad(`fstat ${n}: mount size ${msize}, expected ${size}`);
      const off = int(size + 1); const len = 1 + int(100_000);
      const bm = Buffer.alloc(len); const be = Buffer.alloc(len);
      const nm = fs.readSync(f[0], bm, 0, len, off); const ne = fs.readSync(f[1], be, 0, len, off);
      count('read');
      if (nm !== ne || !bm.subarray(0, nm).equals(be.subarray(0, ne))) bad(`read ${n} @${off}+${len}: ${nm} vs ${ne} bytes, content ${bm.subarray(0, nm).equals(be.subarray(0, ne)) ? 'same' : 'differs'}`);
    } else if (kind === 'truncate') {
      const len = int(300_000);
      fs.ftruncateSync(f[0], len); fs.ftruncateSync(f[1], len);
      count('truncate');
    } else if (kind === 'fsync') {
      fs.fsyncSync(f[0]); count('fsync');
    } else if (kind === 'close') {
      close(n);
    } else {
      // a fresh descriptor after the others are closed: the bytes must survive close
      close(n);
      let bm; try { bm = fs.readFileSync(path.join(a1, n)); } catch (e) { bm = e.code; }
      const be = fs.existsSync(path.join(a2, n)) ? fs.readFileSync(path.join(a2, n)) : 'ENOENT';
      count('reopen-read');
      if (typeof bm === 'string' || typeof be === 'string' ? bm !== be : !bm.equals(be)) bad(`reopen-read ${n}: content differs (${bm.length ?? bm} vs ${be.length ?? be} bytes)`);
    }
  }
}

function tree(deadline) {
  const dirs = ['']; const files = [];
  const nm = (p) => `${p}${int(1000)}`;
  while (Date.now() < deadline) {
    const kind = pick(['mkdir', 'create', 'create', 'write', 'rename', 'rename-dir', 'unlink', 'rmdir', 'truncate', 'fsync']);
    const d = pick(dirs);
    if (kind === 'mkdir') {
      if (dirs.length >= 12) continue;
      const p = path.join(d, nm('d'));
      const [m] = both('mkdir', `mkdir ${p}`, (r) => fs.mkdirSync(path.join(r, p)));
      if (!m.err) dirs.push(p);
    } else if (kind === 'create') {
      if (files.length >= 40) continue;
      const p = path.join(d, `${nm('f')}.dat`); const buf = data(int(200_000));
      const [m] = both('create', `create ${p}`, (r) => fs.writeFileSync(path.join(r, p), buf));
      if (!m.err && !files.includes(p)) files.push(p);
    } else if (files.length === 0) {
      continue;
    } else if (kind === 'write') {
      const p = pick(files); const buf = data(1 + int(50_000)); const off = int(100_000);
      both('write', `write ${p}`, (r) => { const fd = fs.openSync(path.join(r, p), 'r+'); try { fs.writeSync(fd, buf, 0, buf.length, off); } finally { fs.closeSync(fd); } });
    } else if (kind === 'rename') {
      const p = pick(files); const q = path.join(pick(dirs), rnd() < 0.3 ? path.basename(pick(files)) : `${nm('f')}.dat`);
      const [m] = both('rename', `rename ${p} ${q}`, (r) => fs.renameSync(path.join(r, p), path.join(r, q)));
      if (!m.err && p !== q) { files.splice(files.indexOf(p), 1); if (!files.includes(q)) files.push(q); }
    } else if (kind === 'rename-dir') {
      const from = pick(dirs.filter((x) => x)); if (!from) continue;
      const to = path.join(pick(dirs.filter((x) => x !== from && !x.startsWith(`${from}/`))), nm('d'));
      const [m] = both('rename-dir', `rename ${from}/ ${to}/`, (r) => fs.renameSync(path.join(r, from), path.join(r, to)));
      if (!m.err) {
        const mv = (x) => (x === from ? to : x.startsWith(`${from}/`) ? to + x.slice(from.length) : x);
        for (let i = 0; i < dirs.length; i++) dirs[i] = mv(dirs[i]);
        for (let i = 0; i < files.length; i++) files[i] = mv(files[i]);
      }
    } else if (kind === 'unlink') {
      const p = pick(files);
      const [m] = both('unlink', `unlink ${p}`, (r) => fs.unlinkSync(path.join(r, p)));
      if (!m.err) files.splice(files.indexOf(p), 1);
    } else if (kind === 'rmdir') {
      const p = pick(dirs.filter((x) => x)); if (!p) continue;
      const [m] = both('rmdir', `rmdir ${p}`, (r) => fs.rmdirSync(path.join(r, p)));
      if (!m.err) dirs.splice(dirs.indexOf(p), 1);
    } else if (kind === 'truncate') {
      const p = pick(files); const len = int(150_000);
      both('truncate', `truncate ${p}`, (r) => fs.truncateSync(path.join(r, p), len));
    } else {
      const p = pick(files);
      both('fsync', `fsync ${p}`, (r) => { const fd = fs.openSync(path.join(r, p), 'r+'); try { fs.writeSync(fd, Buffer.from('x'), 0, 1, 0); fs.fsyncSync(fd); } finally { fs.closeSync(fd); } });
    }
  }
  // The mount's listing of the whole subtree must equal the copy's.
  const lm = walk(a1); const le = walk(a2);
  count('listing');
  for (const x of lm) if (!le.includes(x)) bad(`final listing: ${x} on the mount, not expected`);
  for (const x of le) if (!lm.includes(x)) bad(`final listing: ${x} expected, not on the mount`);
}

// Dropbox's content_hash: sha256 over the sha256 of each 4 MiB block.
const contentHash = (buf) => {
  const parts = [];
  for (let i = 0; i < buf.length; i += 4 << 20) parts.push(crypto.createHash('sha256').update(buf.subarray(i, i + (4 << 20))).digest());
  return crypto.createHash('sha256').update(Buffer.concat(parts)).digest('hex');
};

async function compare(root, url) {
  const expect = new Map();
  const walk = (rel) => { for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const p = `${rel}/${e.name}`;
    if (e.isDirectory()) { expect.set(p.toLowerCase(), { p, dir: true }); walk(p); } else expect.set(p.toLowerCase(), { p, hash: contentHash(fs.readFileSync(path.join(root, p))) });
  } };
  walk('');
  const call = async (route, body) => {
    const res = await fetch(`${url}/2/${route}`, { method: 'POST', headers: { Authorization: `Bearer ${process.env.DBX_TOKEN}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(60_000) });
    if (!res.ok) throw new Error(`${route}: HTTP ${res.status}: ${await res.text()}`);
    return res.json();
  };
  const remote = new Map();
  let page = await call('files/list_folder', { path: '', recursive: true, limit: 2000 });
  for (;;) {
    for (const e of page.entries) if (e['.tag'] !== 'deleted') remote.set(e.path_lower, e);
    if (!page.has_more) break;
    page = await call('files/list_folder/continue', { cursor: page.cursor });
  }
  let files = 0; let folders = 0;
  for (const [k, v] of expect) {
    const r = remote.get(k);
    if (v.dir) { folders++; if (!r || r['.tag'] !== 'folder') bad(`${v.p}/: folder missing in Dropbox${r ? ` (a ${r['.tag']})` : ''}`); continue; }
    files++;
    if (!r || r['.tag'] !== 'file') bad(`${v.p}: missing in Dropbox${r ? ` (a ${r['.tag']})` : ''}`);
    else if (r.content_hash !== v.hash) bad(`${v.p}: content_hash ${r.content_hash} in Dropbox, expected ${v.hash} (size ${r.size})`);
  }
  for (const [k, r] of remote) if (!expect.has(k)) bad(`${r.path_display}${r['.tag'] === 'folder' ? '/' : ''}: in Dropbox, not in the expected tree`);
  ops.files = files; ops.folders = folders;
}

if (mode === 'fsx') fsx(Date.now() + Number(a3) * 1000);
else if (mode === 'tree') tree(Date.now() + Number(a3) * 1000);
else if (mode === 'compare') await compare(a1, a2);
else { console.error('usage: soak.mjs fsx|tree MNTDIR EXPDIR SECONDS SEED | compare EXPROOT URL'); process.exit(2); }
process.stdout.write(`${JSON.stringify({ ops, mismatches })}\n`);
