/**
 * The mount's log (app/mount-log.ts) on real files: levels (DEBUG only with --debug), a private
 * file, rotation past the size limit (one old copy), and reopen after logrotate moved it.
 */
import test from 'ava';
import { mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openMountLog } from '../../src/app/mount-log.js';
import { loadConfig } from '../../src/config/index.js';

async function tempFile(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sreg-log-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return path.join(dir, 'mount.log');
}

const LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARN|ERROR) .+$/;

test('each line has a time and a level; DEBUG lines only with --debug; the file is 0600', async (t) => {
  for (const debug of [false, true]) {
    const file = await tempFile(t);
    const log = openMountLog({ file, debug, maxBytes: 1 << 20 });
    log.debug('a detail');
    log.info('ready');
    log.warn('slow');
    log.error('broken');
    log.close();
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    for (const l of lines) t.regex(l, LINE);
    t.deepEqual(lines.map((l) => l.split(' ')[1]), debug ? ['DEBUG', 'INFO', 'WARN', 'ERROR'] : ['INFO', 'WARN', 'ERROR']);
    t.is((await stat(file)).mode & 0o777, 0o600);
  }
});

test('the log is rotated past its size: the file and its one old copy stay under the limit, the newest line is in the file', async (t) => {
  const file = await tempFile(t);
  const maxBytes = 4096;
  const log = openMountLog({ file, debug: false, maxBytes });
  for (let i = 0; i < 1000; i++) log.info(`line ${i} ${'x'.repeat(60)}`);
  log.close();
  t.true((await stat(file)).size <= maxBytes);
  t.true((await stat(`${file}.1`)).size <= maxBytes);
  t.regex(await readFile(file, 'utf8'), /line 999 x+\n$/);
  t.regex(await readFile(`${file}.1`, 'utf8'), /^\S+ INFO line \d+ /);
});

test('reopen (SIGHUP) after logrotate moved the file writes to a new file at the old name', async (t) => {
  const file = await tempFile(t);
  const log = openMountLog({ file, debug: false, maxBytes: 1 << 20 });
  log.info('before');
  await rename(file, `${file}.old`);
  log.info('still into the moved file');
  log.reopen();
  log.info('after');
  log.close();
  t.regex(await readFile(`${file}.old`, 'utf8'), /before\n.*still into the moved file\n$/);
  t.regex(await readFile(file, 'utf8'), /^\S+ INFO after\n$/);
});

test('SREG_LOG_MAX_BYTES sets the limit; a size that is not one is a clear config error', (t) => {
  t.is(loadConfig({ HOME: '/nowhere', SREG_LOG_MAX_BYTES: '1Mi' }).logMaxBytes, 1024 * 1024);
  t.is(loadConfig({ HOME: '/nowhere' }).logMaxBytes, 10 * 1024 * 1024);
  t.throws(() => loadConfig({ HOME: '/nowhere', SREG_LOG_MAX_BYTES: 'lots' }), { message: /SREG_LOG_MAX_BYTES: 'lots' is not a byte size/ });
});
