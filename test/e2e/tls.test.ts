/**
 * A background mount over TLS with a CA of the user's own (NODE_EXTRA_CA_CERTS): the emulator's
 * HTTPS listener with a throwaway certificate made here. The mount process gets the setting as
 * SREG_EXTRA_CA_CERTS (so Node does not read the file while it starts) and must still trust the
 * certificate for every kind of connection it makes: the SDK's calls (the account, the listing),
 * block fetches (range sockets) and uploads. Without the setting the mount refuses the
 * certificate, in one line.
 */
import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CLI, sdk, selfSignedCert, startEmulator } from '../helpers/emulator.js';
import { e2e, FUSE, isMounted, privateHome, pseudoRandom, remoteBytes, sh } from './helpers.js';

const e2eTest = e2e('tls.test');

let workDir = '';
test.before(async () => {
  if (FUSE.ok) workDir = await mkdtemp(path.join(tmpdir(), 'sreg-e2e-tls-'));
});
test.after.always(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** The environment of a running process, as NAME=value pairs. */
async function environOf(pid: number): Promise<Map<string, string>> {
  const raw = await readFile(`/proc/${pid}/environ`, 'utf8');
  return new Map(raw.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

e2eTest('a background mount trusts NODE_EXTRA_CA_CERTS for the account, listings, block fetches and uploads, without Node reading it at start', async (t) => {
  const { cert, key } = await selfSignedCert(workDir);
  const emu = await startEmulator(t, { args: ['--tls-cert', cert, '--tls-key', key] });
  t.truthy(emu.tlsUrl, 'the emulator announced its TLS listener');
  const bytes = pseudoRandom(9 * 1024 * 1024 + 123, 'tls');
  await sdk(emu).filesUpload({ path: '/tls/a.simg', contents: bytes });

  const h = await privateHome(t, workDir, { url: emu.tlsUrl!, token: emu.token }, 'ca', { NODE_EXTRA_CA_CERTS: cert });
  const sreg = (args: string[]): ReturnType<typeof sh> => sh(process.execPath, [CLI, ...args], { env: h.env, timeoutMs: 120_000 });
  const m = await sreg(['mount', h.dir]);
  t.is(m.code, 0, `sreg mount: ${m.stderr}`);
  const pid = Number(/\(pid (\d+),/.exec(m.stdout)?.[1]);
  t.true(pid > 0, m.stdout);
  try {
    const env = await environOf(pid);
    t.false(env.has('NODE_EXTRA_CA_CERTS'), 'Node of the mount process does not read the file while it starts');
    t.is(env.get('SREG_EXTRA_CA_CERTS'), cert, 'the mount process reads it itself');

    const file = path.join(h.dir, 'tls', 'a.simg');
    t.true(Buffer.from(await readFile(file)).equals(bytes), 'the bytes read through the mount (block fetches over TLS)');
    const written = pseudoRandom(5 * 1024 * 1024, 'tls-up');
    await writeFile(path.join(h.dir, 'tls', 'b.simg'), written);
  } finally {
    const u = await sreg(['unmount', h.dir]);
    t.is(u.code, 0, `sreg unmount: ${u.stderr}`);
    // Refused (an upload that cannot land): no mount process may outlive the test.
    if (u.code !== 0 && pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  t.false(await isMounted(h.dir));
  t.true((await remoteBytes(sdk(emu), '/tls/b.simg')).equals(pseudoRandom(5 * 1024 * 1024, 'tls-up')), 'the write was uploaded over TLS');
});

e2eTest('without the CA the mount refuses the certificate in one line and mounts nothing', async (t) => {
  const { cert, key } = await selfSignedCert(workDir);
  const emu = await startEmulator(t, { args: ['--tls-cert', cert, '--tls-key', key] });
  const h = await privateHome(t, workDir, { url: emu.tlsUrl!, token: emu.token }, 'noca');
  const m = await sh(process.execPath, [CLI, 'mount', h.dir], { env: h.env, timeoutMs: 120_000 });
  t.not(m.code, 0, m.stdout);
  t.regex(m.stderr, /^ERROR [^\n]*certificate[^\n]*\n$/i);
  t.false(await isMounted(h.dir));
});
