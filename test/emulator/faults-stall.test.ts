/**
 * The emulator's `stall` fault (docs/emulator.md): without `afterBytes` a request is accepted
 * and never answered; with it the headers and that many body bytes are sent, then nothing,
 * the connection held open. "Nothing" is checked without timing: a later request on another
 * connection is answered while the stalled one still has nothing more.
 */
import test from 'ava';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEmulator, type Emulator } from '../helpers/emulator.js';

interface Open {
  req: http.ClientRequest;
  res?: http.IncomingMessage;
  bodyBytes: number;
  ended: boolean;
}

/** Starts a request and records what comes back, without waiting for it. */
function start(emu: Emulator, route: string, headers: Record<string, string>, body?: string): Open {
  const o: Open = { req: undefined as never, bodyBytes: 0, ended: false };
  o.req = http.request(`${emu.url}/2/${route}`, { method: 'POST', headers: { authorization: `Bearer ${emu.token}`, ...headers }, agent: false }, (res) => {
    o.res = res;
    res.on('data', (d: Buffer) => (o.bodyBytes += d.length));
    res.on('end', () => (o.ended = true));
    res.on('error', () => undefined);
  });
  o.req.on('error', () => undefined);
  o.req.end(body);
  return o;
}

async function fired(emu: Emulator): Promise<number> {
  return (await emu.admin<{ fired: number }[]>('GET', '/faults')).reduce((a, r) => a + r.fired, 0);
}

async function untilFired(emu: Emulator, n: number): Promise<void> {
  while ((await fired(emu)) < n) await sleep(20);
}

const account = (emu: Emulator): Promise<Response> => fetch(`${emu.url}/2/users/get_current_account`, { method: 'POST', headers: { authorization: `Bearer ${emu.token}` } });

test('stall without afterBytes: accepted, never answered, while other requests are', async (t) => {
  const emu = await startEmulator(t);
  await emu.admin('POST', '/faults', { kind: 'stall', routes: ['files/list_folder'], count: 1 });
  const o = start(emu, 'files/list_folder', { 'content-type': 'application/json' }, JSON.stringify({ path: '' }));
  await untilFired(emu, 1);
  t.is((await account(emu)).status, 200, 'another request is answered');
  t.is(o.res, undefined, 'the stalled request has no answer, not even headers');
  o.req.destroy();
  // The rule fired once (count 1): the next call is answered.
  const again = await fetch(`${emu.url}/2/files/list_folder`, {
    method: 'POST',
    headers: { authorization: `Bearer ${emu.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ path: '' }),
  });
  t.is(again.status, 200);
});

test('stall with afterBytes on a download: the headers and exactly that many bytes, then nothing', async (t) => {
  const emu = await startEmulator(t);
  const up = await fetch(`${emu.url}/2/files/upload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${emu.token}`, 'content-type': 'application/octet-stream', 'dropbox-api-arg': JSON.stringify({ path: '/f.bin' }) },
    body: Buffer.alloc(300_000, 7),
  });
  t.is(up.status, 200);
  await emu.admin('POST', '/faults', { kind: 'stall', routes: ['files/download'], afterBytes: 1000 });
  const o = start(emu, 'files/download', { 'dropbox-api-arg': JSON.stringify({ path: '/f.bin' }) });
  while (o.bodyBytes < 1000) await sleep(20);
  t.is((await account(emu)).status, 200, 'another request is answered');
  t.is(o.res?.statusCode, 200);
  t.is(o.res?.headers['content-length'], '300000');
  t.is(o.bodyBytes, 1000, 'exactly afterBytes of the body');
  t.false(o.ended, 'the body never ends');
  o.req.destroy();
});

test('stall with afterBytes on an RPC answer: the JSON stops part-way', async (t) => {
  const emu = await startEmulator(t);
  await emu.admin('POST', '/faults', { kind: 'stall', routes: ['users/get_current_account'], afterBytes: 10, count: 1 });
  const o = start(emu, 'users/get_current_account', {});
  while (o.bodyBytes < 10) await sleep(20);
  t.is((await account(emu)).status, 200, 'the next one (the rule spent) is answered whole');
  t.is(o.bodyBytes, 10);
  t.false(o.ended);
  o.req.destroy();
});

test('a stall rule with a bad afterBytes is refused', async (t) => {
  const emu = await startEmulator(t);
  for (const afterBytes of [-2, 1.5, 'x']) {
    const e = await t.throwsAsync(emu.admin('POST', '/faults', { kind: 'stall', afterBytes }));
    t.regex(e.message, /afterBytes must be a whole number/);
  }
});
