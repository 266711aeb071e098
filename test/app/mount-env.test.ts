/** The mount process's environment (app/mount-child.ts mountProcessEnv): glibc malloc settings added, the user's kept. */
import test from 'ava';
import { mountProcessEnv } from '../../src/app/mount-child.js';
import { EXTRA_CA_ENV } from '../../src/dropbox/tls-ca.js';

test('the mount process gets heap-friendly malloc settings and everything else of ours', (t) => {
  const env = mountProcessEnv({ PATH: '/usr/bin', SREGISTRY_DROPBOX_TOKEN: 'x' });
  t.is(env.MALLOC_MMAP_THRESHOLD_, String(8 * 1024 * 1024));
  t.is(env.MALLOC_TRIM_THRESHOLD_, String(64 * 1024 * 1024));
  t.is(env.PATH, '/usr/bin');
  t.is(env.SREGISTRY_DROPBOX_TOKEN, 'x');
});

test("a user's own malloc settings win", (t) => {
  const env = mountProcessEnv({ MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '0' });
  t.is(env.MALLOC_MMAP_THRESHOLD_, '131072');
  t.is(env.MALLOC_TRIM_THRESHOLD_, '0');
});

test('NODE_EXTRA_CA_CERTS reaches the mount process as SREG_EXTRA_CA_CERTS, read by its Dropbox client (dropbox/tls-ca.ts) instead of by Node at start', (t) => {
  const env = mountProcessEnv({ NODE_EXTRA_CA_CERTS: '/etc/site-ca.pem', PATH: '/usr/bin' });
  t.false('NODE_EXTRA_CA_CERTS' in env);
  t.is(env[EXTRA_CA_ENV], '/etc/site-ca.pem');
  t.is(mountProcessEnv({ NODE_EXTRA_CA_CERTS: '/a.pem', SREG_EXTRA_CA_CERTS: '/b.pem' })[EXTRA_CA_ENV], '/b.pem', 'one set already wins');
  t.false(EXTRA_CA_ENV in mountProcessEnv({ PATH: '/usr/bin' }));
});
