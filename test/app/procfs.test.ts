/**
 * What app/procfs.ts reads from the kernel, on this machine's real /proc: a process's start
 * time (and none for a zombie, which kill(pid, 0) still counts as alive), a recorded pid that
 * now names a process started at another time, and the mount table entry of a folder.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { isSregMount, mountEntry, processStart, sameProcessAlive } from '../../src/app/procfs.js';

test('the start time of a running process; a pid that names a process started at another time is not it', async (t) => {
  const start = await processStart(process.pid);
  t.regex(start ?? '', /^\d+$/);
  t.true(await sameProcessAlive(process.pid, start));
  t.false(await sameProcessAlive(process.pid, String(Number(start) + 1)), 'a reused pid');
  t.is(await processStart(0), undefined);
  t.is(await processStart(2 ** 22 + 1), undefined, 'beyond pid_max: no such process');
});

test('a zombie has no start time (kill(pid, 0) says alive)', async (t) => {
  // The inner sleep exits at once; its parent, exec'd into another sleep, never reaps it.
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => parent.kill('SIGKILL'));
  const pid = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  let state = '';
  for (let i = 0; i < 500 && state !== 'Z'; i++) {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    state = text.slice(text.lastIndexOf(')') + 2).split(' ')[0] ?? '';
    if (state !== 'Z') await new Promise((r) => setTimeout(r, 10));
  }
  t.is(state, 'Z');
  t.notThrows(() => process.kill(pid, 0));
  t.is(await processStart(pid), undefined);
  t.false(await sameProcessAlive(pid, null));
});

test('the mount table entry of a folder: /proc is proc, not sreg; a plain folder has none', async (t) => {
  t.deepEqual(await mountEntry('/proc'), { source: 'proc', type: 'proc' });
  t.false(isSregMount(await mountEntry('/proc')));
  t.is(await mountEntry('/proc/self'), undefined);
  t.true(isSregMount({ source: 'sreg', type: 'fuse.sreg' }));
  t.false(isSregMount({ source: 'other', type: 'fuse.sreg' }), 'another FUSE filesystem calling itself sreg by subtype only');
});
