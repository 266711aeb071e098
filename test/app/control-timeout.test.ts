/**
 * The control-socket client never waits forever (issue 8): a mount process that accepts the
 * connection and says nothing (its event loop stuck) fails `askControl` with a clear error after
 * the idle time; one that keeps sending progress is waited for; garbage is an error, not a throw
 * from inside a socket callback.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { askControl } from '../../src/app/control.js';

async function server(t: ExecutionContext, onConn: (s: Socket) => void): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sreg-ctl-'));
  const file = path.join(dir, 'c.sock');
  const socks = new Set<Socket>();
  const srv = createServer((s) => {
    socks.add(s);
    s.on('error', () => undefined);
    onConn(s);
  });
  await new Promise<void>((resolve) => srv.listen(file, resolve));
  t.teardown(async () => {
    for (const s of socks) s.destroy();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });
  return file;
}

test('a mount that accepts and never answers: askControl fails after the idle time', async (t) => {
  const file = await server(t, () => undefined);
  const e = await t.throwsAsync(askControl(file, { cmd: 'status' }, undefined, { timeoutMs: 200 }));
  t.regex(e.message, /did not answer on its control socket within 0\.2 s/);
});

test('progress lines keep the client waiting past the idle time until the answer comes', async (t) => {
  const file = await server(t, (s) => {
    let n = 0;
    const timer = setInterval(() => {
      n++;
      if (n < 6) s.write(`${JSON.stringify({ progress: { n } })}\n`);
      else {
        clearInterval(timer);
        s.end(`${JSON.stringify({ done: true, ok: true, result: 'bye' })}\n`);
      }
    }, 250);
    s.on('close', () => clearInterval(timer));
  });
  const seen: unknown[] = [];
  // 6 lines 250 ms apart: 1.5 s in all, longer than the idle time; each gap well under it.
  const r = await askControl(file, { cmd: 'unmount' }, (p) => seen.push(p), { timeoutMs: 1000 });
  t.deepEqual(r, { done: true, ok: true, result: 'bye' } as never);
  t.is(seen.length, 5);
});

test('an answer that is not JSON: a clear error', async (t) => {
  const file = await server(t, (s) => s.write('<html>\n'));
  const e = await t.throwsAsync(askControl(file, { cmd: 'status' }, undefined, { timeoutMs: 5000 }));
  t.regex(e.message, /not a control message/);
});
