// The native addon's FUSE passthrough against its ordinary read path and local disk, on one
// image (scripts/bench-passthrough.sh runs it). Mounts the addon (dist/, native/build) on MNT
// with the one-file dispatch test/e2e/passthrough.test.ts checks (test/helpers/one-file-fs.ts):
// the image as `f`, read-only opens answered with it as their backing file (MODE pt), or with
// passthrough not taken up, the ordinary way and reads served by the dispatch (MODE plain, the
// addon's JS path; the mount's fast path from block files is not in this picture).
// Per run: drop_caches, `dd bs=1M` of MNT/f (warm), again (second); drop_caches, dd of the image
// (local), again (page). Prints one JSON line per run (MB/s) and the addon's counters.
//   node scripts/lib/passthrough-probe.mjs IMAGE MNT pt|plain RUNS
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { loadNative } from '../../dist/src/fuse3/native.js';
import { mountOneFile } from '../../dist/test/helpers/one-file-fs.js';

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
// plain: passthrough not taken up, so the opens are answered the ordinary way.
const fs = await mountOneFile(addon, mnt, image, mode === 'pt');
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
  await fs.close();
}
process.exit(code);
