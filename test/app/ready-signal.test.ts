/** A background mount's ready line to its parent (app/ready-signal.ts). */
import { spawn } from 'node:child_process';
import test from 'ava';
import { READY_ENV, READY_FD, signalReady, takeReadyFd } from '../../src/app/ready-signal.js';

test('the descriptor is taken only when the parent named it, and forgotten by the environment', (t) => {
  const env: NodeJS.ProcessEnv = { [READY_ENV]: String(READY_FD), OTHER: 'x' };
  t.is(takeReadyFd(env), READY_FD);
  t.false(READY_ENV in env, 'no child of the mount inherits it');
  t.is(env.OTHER, 'x');
  t.is(takeReadyFd({}), undefined, 'a mount started by hand writes nothing on fd 3');
  t.is(takeReadyFd({ [READY_ENV]: '7' }), undefined);
  t.notThrows(() => signalReady(undefined));
});

test('a child writes its ready line on the pipe and closes it', async (t) => {
  const mod = new URL('../../src/app/ready-signal.js', import.meta.url).href;
  const code = `const m = await import(${JSON.stringify(mod)}); m.signalReady(m.takeReadyFd()); setTimeout(() => {}, 300);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'ignore', 'inherit', 'pipe'], env: { ...process.env, [READY_ENV]: String(READY_FD) } });
  const pipe = child.stdio[READY_FD] as NodeJS.ReadableStream;
  let text = '';
  pipe.on('data', (d: Buffer) => (text += d.toString()));
  // The pipe ends when the child closes it, before the child exits.
  await new Promise<void>((r) => pipe.on('end', () => r()));
  t.is(child.exitCode, null, 'closed by the child, not by its exit');
  t.is(text, 'ready\n');
  await new Promise((r) => child.on('exit', r));
});
