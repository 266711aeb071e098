/**
 * A second real client: Debian's python3-dropbox (the official Python SDK, 11.34) against the
 * emulator's TLS listener. The SDK speaks only HTTPS and takes its hosts from
 * DROPBOX_API_HOST / DROPBOX_API_CONTENT_HOST / DROPBOX_API_NOTIFY_HOST; it trusts a
 * throwaway certificate made here with openssl (private key in a temp dir, removed at the end):
 * through REQUESTS_CA_BUNDLE, as requests checks every request against its own bundle and
 * overrides the ca_certs the SDK gives its connection pool.
 * The steps live in python_sdk_client.py; each prints `ok STEP` after its own assertions.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { selfSignedCert, startEmulator } from '../helpers/emulator.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../../test/emulator/python_sdk_client.py', import.meta.url));
const PYTHON = '/usr/bin/python3';

const STEPS = [
  'get_current_account',
  'upload',
  'list_folder limit + continue',
  'list_folder recursive',
  'list_folder //py',
  'get_metadata file, folder, missing',
  'download',
  'upload session v1',
  'upload session v2',
  'finish_batch v1 + check, finish_batch_v2',
  'copy/move/delete v2 and v1',
  'shared links: create, already exists, list, v1',
  'longpoll',
];

test('python3-dropbox 11.34 drives the emulator over TLS: listing, metadata, uploads, sessions, batches, relocations, links, longpoll', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sreg-pysdk-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { cert, key } = await selfSignedCert(dir);

  const emu = await startEmulator(t, { args: ['--tls-cert', cert, '--tls-key', key] });
  t.truthy(emu.tlsUrl, 'the emulator announced its TLS listener');
  await emu.admin('POST', '/config', { longpollMaxWaitSec: 1 });
  const host = new URL(emu.tlsUrl!).host;
  let out = '';
  try {
    const r = await run(PYTHON, [SCRIPT], {
      timeout: 90_000,
      env: { PATH: process.env.PATH, DROPBOX_API_HOST: host, DROPBOX_API_CONTENT_HOST: host, DROPBOX_API_NOTIFY_HOST: host, SREG_TEST_TOKEN: emu.token, SREG_TEST_CA: cert, REQUESTS_CA_BUNDLE: cert },
    });
    out = r.stdout;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    t.fail(`python script failed:\n${err.stdout ?? ''}\n${err.stderr ?? String(e)}`);
    return;
  }
  t.deepEqual(out.trim().split('\n'), STEPS.map((s) => `ok ${s}`));
  // The v1 routes were really used (not silently mapped by the SDK to v2).
  const stats = await emu.admin<{ requests: Record<string, number> }>('GET', '/stats');
  for (const route of ['files/upload_session/append', 'files/upload_session/finish_batch', 'sharing/create_shared_link', 'sharing/get_shared_links', 'files/copy', 'files/move', 'files/delete', 'files/list_folder/longpoll']) {
    t.true((stats.requests[route] ?? 0) > 0, route);
  }
});
