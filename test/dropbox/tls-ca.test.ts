/** Extra CA certificates read by the mount's Dropbox client (dropbox/tls-ca.ts), and a refused certificate's error (errors.ts). */
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { classify, RemoteError, untrustedCertificate } from '../../src/dropbox/errors.js';
import { EXTRA_CA_ENV, extraCaContext } from '../../src/dropbox/tls-ca.js';
import { selfSignedCert } from '../helpers/emulator.js';

test('extraCaContext: none set, a usable PEM file (made once), and files that cannot be used (a warning, Node\'s CAs)', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sreg-ca-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { cert } = await selfSignedCert(dir);
  const warnings: string[] = [];
  const warn = (l: string): void => void warnings.push(l);

  t.is(extraCaContext(warn, {}), undefined);
  const ctx = extraCaContext(warn, { [EXTRA_CA_ENV]: cert });
  t.truthy(ctx?.context, 'a TLS context');
  t.is(extraCaContext(warn, { [EXTRA_CA_ENV]: cert }), ctx, 'made once');
  t.deepEqual(warnings, []);

  t.is(extraCaContext(warn, { [EXTRA_CA_ENV]: path.join(dir, 'missing.pem') }), undefined);
  t.regex(warnings.pop() ?? '', /extra CA certificates \(NODE_EXTRA_CA_CERTS\) not used: .*missing\.pem: ENOENT/);
  const junk = path.join(dir, 'junk.pem');
  await writeFile(junk, 'not a certificate\n');
  t.is(extraCaContext(warn, { [EXTRA_CA_ENV]: junk }), undefined);
  t.regex(warnings.pop() ?? '', /junk\.pem: no PEM certificate in it/);
});

test('a refused server certificate is one clear, final error naming NODE_EXTRA_CA_CERTS, from the socket or from node-fetch', (t) => {
  const socket = Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  const fetchErr = Object.assign(new Error('request to https://127.0.0.1:1/2/users/get_current_account failed, reason: unable to get local issuer certificate'), {
    type: 'system',
    code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  });
  t.is(untrustedCertificate(socket), 'self-signed certificate, DEPTH_ZERO_SELF_SIGNED_CERT');
  t.is(untrustedCertificate(new Error('wrapped', { cause: fetchErr })), 'unable to get local issuer certificate, UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
  t.is(untrustedCertificate(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })), undefined);

  const e = classify('users/get_current_account', fetchErr, 'https://127.0.0.1:1');
  t.true(e instanceof RemoteError);
  t.false(e.retryable, 'not retried: it will not be trusted any better a second later');
  t.is(e.message, "cannot trust the TLS certificate of https://127.0.0.1:1 (unable to get local issuer certificate, UNABLE_TO_GET_ISSUER_CERT_LOCALLY) during users/get_current_account: if a proxy or your site signs it, point NODE_EXTRA_CA_CERTS at that CA's certificate (a PEM file)");
});
