// The native addon's FUSE passthrough against its ordinary read path and local disk, on one
// image (scripts/bench-passthrough.sh runs it). Mounts the addon (dist/, native/build) on MNT
// with a dispatch of its own: one file, `f`, the image; opens answered with the image as their
// backing file (MODE pt) or the ordinary way, reads then served here from the image (MODE
// plain, the addon's JS path; the mount's fast path from block files is not in this picture).
// Per run: drop_caches, `dd bs=1M` of MNT/f (warm), again (second); drop_caches, dd of the image
// (local), again (page). Prints one JSON line per run (MB/s) and the addon's counters.
//   node scripts/lib/passthrough-probe.mjs IMAGE MNT pt|plain RUNS
import { execFile } from 'node:child_process';
import { open, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { NATIVE_MOUNT_OPTIONS } from '../../dist/src/fuse3/index.js';
import { loadNative, Op } from '../../dist/src/fuse3/native.js';

const run = promisify(execFile);
const [image, mnt, mode, runsText] = process.argv.slice(2);
if (!image || !mnt || !['pt', 'plain'].includes(mode) || !(Number(runsText) >= 1)) {
  console.error('usage: passthrough-probe.mjs IMAGE MNT pt|plain RUNS');
  process.exit(2);
}
const { addon, why } = loadNative();
if (!addon) {
  console.error(`no native addon: ${why}`);
  process.exit(1);
}
const size = (await stat(image)).size;
const back = await open(image, 'r');
const FILE = 2;
const attr = (ino) => (ino === FILE ? Float64Array.of(0o100444, 1, 0, 0, size, Math.ceil(size / 512), 4096, 0, 0, 0) : Float64Array.of(0o40755, 2, 0, 0, 0, 0, 4096, 0, 0, 0));
addon.mount(mnt, NATIVE_MOUNT_OPTIONS, false, (id, op, ino, _fh, a, b, _c, name) => {
  switch (op) {
    case Op.INIT:
    case Op.FORGET:
      return;
    case Op.LOOKUP:
      return ino === 1 && name === 'f' ? addon.replyEntry(id, FILE, attr(FILE), 60, 60) : addon.replyErr(id, 2);
    case Op.GETATTR:
      return addon.replyAttr(id, ino, attr(ino), 60);
    case Op.OPEN: // keep_cache, as the mount gives a revision it has seen
      return mode === 'pt' ? addon.replyOpen(id, 7, 0, 1, image) : addon.replyOpen(id, 7, 0, 1);
    case Op.READ: {
      if (!id) return;
      const buf = Buffer.allocUnsafe(a);
      back.read(buf, 0, a, b).then(({ bytesRead }) => addon.replyBuf(id, buf, bytesRead), () => addon.replyErr(id, 5));
      return;
    }
    case Op.FLUSH:
    case Op.RELEASE:
    case Op.ACCESS:
      return addon.replyOk(id);
    default:
      return addon.replyErr(id, 38);
  }
}, mode === 'pt');
let code = 0;
try {
  // The mount's readahead, as sreg raises it (src/app/fuse-adapter.ts NATIVE_READAHEAD_KB).
  const { NATIVE_READAHEAD_KB } = await import('../../dist/src/app/fuse-adapter.js');
  const { setReadahead } = await import('../../dist/src/fuse/mountinfo.js');
  await setReadahead(mnt, NATIVE_READAHEAD_KB, (l) => console.error(l));
  const ddRate = async (file) => {
    const t0 = process.hrtime.bigint();
    await run('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M', 'status=none'], { maxBuffer: 1 << 20 });
    return Math.round(size / (Number(process.hrtime.bigint() - t0) / 1e9) / 1e6);
  };
  const drop = () => run('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']);
  for (let i = 0; i < Number(runsText); i++) {
    await drop();
    const warm = await ddRate(`${mnt}/f`);
    const second = await ddRate(`${mnt}/f`);
    await drop();
    const local = await ddRate(image);
    const page = await ddRate(image);
    console.log(JSON.stringify({ mode, warm, second, local, page }));
  }
  const { stdout } = await run('cmp', [`${mnt}/f`, image]).catch((e) => ({ stdout: `differ: ${e.stdout}` }));
  if (stdout) throw new Error(`the mounted bytes differ from the image: ${stdout}`);
  console.log(JSON.stringify({ mode, counters: addon.counters() }));
} catch (e) {
  console.error(`passthrough-probe: ${e.message}`);
  code = 1;
} finally {
  await addon.unmount();
  await back.close();
}
process.exit(code);
