/** The pipe between a background mount and its parent (app/ready-signal.ts), both ways. */
import { spawn } from 'node:child_process';
import type { Duplex } from 'node:stream';
import test from 'ava';
import { parentChannel, READY_ENV, READY_FD } from '../../src/app/ready-signal.js';

const MOD = new URL('../../src/app/ready-signal.js', import.meta.url).href;

/** A child that waits for `go`, then prints `went` on stdout and says `ready` on the pipe; or prints `no go`. */
function startChild(withPipe = true): { pipe: Duplex; out: Promise<string>; exit: Promise<number | null> } {
  const code = `const m = await import(${JSON.stringify(MOD)}); const p = m.parentChannel();
    if (!p) { process.stdout.write('no pipe'); process.exit(0); }
    if (!(await p.go)) { process.stdout.write('no go'); process.exit(0); }
    process.stdout.write('went ' + (process.env.${READY_ENV} ?? 'unset')); p.ready(); setTimeout(() => {}, 200);`;
  const env = withPipe ? { ...process.env, [READY_ENV]: String(READY_FD) } : { ...process.env };
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit', 'pipe'], env });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((r) => child.on('exit', r));
  return { pipe: child.stdio[READY_FD] as Duplex, out: exit.then(() => out), exit };
}

test('without SREG_READY_FD there is no pipe (a mount started by hand: fd 3 may be anything)', (t) => {
  t.is(parentChannel({}), undefined);
});

test('the child waits for go, forgets the variable, says ready on the pipe and closes it', async (t) => {
  const c = startChild();
  let said = '';
  c.pipe.on('data', (d: Buffer) => (said += d.toString()));
  const ended = new Promise<void>((r) => c.pipe.on('end', () => r()));
  c.pipe.write('go\n');
  await ended;
  t.is(said, 'ready\n');
  t.is(await c.out, 'went unset', 'no child of the mount inherits the claim');
});

test('a pipe that ends without go: the child exits 0 and does nothing', async (t) => {
  const c = startChild();
  c.pipe.destroy();
  t.is(await c.exit, 0);
  t.is(await c.out, 'no go');
});

test('a child started without the variable does not wait', async (t) => {
  const c = startChild(false);
  t.is(await c.out, 'no pipe');
});
