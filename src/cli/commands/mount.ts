/** `sreg mount DIR`, `sreg unmount DIR`, `sreg status`: the registry as a filesystem. */
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { mountStatus, unmount, type MountStatus } from '../../app/mount-clients.js';
import { run, type GlobalArgs } from '../run.js';
import { exitWhenDone, runMount } from './mount-run.js';

type Cmd<A> = CommandModule<GlobalArgs, GlobalArgs & A>;

export const mountCommand: Cmd<{ dir: string; foreground?: boolean; 'cache-size': string; 'log-file'?: string; fuse?: string }> = {
  command: 'mount <dir>',
  describe: 'Mount the Dropbox registry on an empty folder (returns once it answers)',
  builder: (y) =>
    y
      .positional('dir', { type: 'string', demandOption: true })
      .option('foreground', { type: 'boolean', default: false, describe: 'stay attached (systemd, containers, debugging)' })
      .option('cache-size', { type: 'string', default: '10Gi', describe: 'block cache budget (e.g. 500M, 10Gi)' })
      .option('fuse', { type: 'string', describe: 'FUSE adapter: native (libfuse 3) or fuse-native (libfuse 2); default SREG_FUSE, else native when it loads' })
      .option('log-file', { type: 'string', hidden: true, describe: 'with --foreground: log to this file (rotated, reopened on SIGHUP)' }),
  handler: (a) => runMount(a),
};

export const unmountCommand: Cmd<{ dir: string }> = {
  command: 'unmount <dir>',
  describe: 'Upload what is pending, then unmount (refuses to drop data)',
  builder: (y) => y.positional('dir', { type: 'string', demandOption: true }),
  handler: async (a) => {
    await run(a, (s) => unmount(s.config, path.resolve(a.dir), s.out));
    exitWhenDone();
  },
};

export const statusCommand: Cmd<{ json?: boolean }> = {
  command: 'status',
  describe: 'Show mounts, cache use and hit rate, and the upload queue',
  builder: (y) => y.option('json', { type: 'boolean', default: false }),
  handler: (a) =>
    run(a, async (s) => {
      const mounts = await mountStatus(s.config);
      if (a.json) return s.out.result(JSON.stringify(mounts, null, 2));
      if (mounts.length === 0) return s.out.result('no sreg mounts');
      for (const m of mounts) s.out.result(formatStatus(m));
    }).then(exitWhenDone),
};

function formatStatus(m: MountStatus): string {
  const lines = [`${m.mountpoint ?? '(no mount)'}: ${m.state}${m.pid ? ` (pid ${m.pid})` : ''}`];
  if (m.adapter) lines.push(`  FUSE adapter: ${m.adapter}`);
  const cache = m.cache;
  if (cache) {
    const reads = cache.hits + cache.misses;
    lines.push(`  cache: ${(cache.usedBytes / 1e6).toFixed(1)} MB of ${(cache.budgetBytes / 1e6).toFixed(0)} MB; hit rate ${reads ? ((100 * cache.hits) / reads).toFixed(1) : '0.0'}% of ${reads} reads; fetched ${(cache.fetchedBytes / 1e6).toFixed(1)} MB`);
  }
  const n = m.nativeReads;
  if (n) lines.push(`  native reads: ${n.fastReads} answered from cached blocks without JavaScript (${(n.fastBytes / 1e6).toFixed(1)} MB), ${n.jsReads} through JavaScript`);
  const up = m.uploads;
  if (up) {
    lines.push(`  uploads: ${up.files} pending (${(up.bytes / 1e6).toFixed(1)} MB)`);
    for (const f of up.failing) lines.push(`    failing: ${f.path}: ${f.error}`);
  }
  if (m.pendingUploads) lines.push(`  uploads: ${m.pendingUploads} pending, ${m.note ?? ''}`);
  if (m.log) lines.push(`  log: ${m.log}`);
  return lines.join('\n');
}
