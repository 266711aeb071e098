/**
 * Extra CA certificates of a background mount process, read at its first TLS connection
 * instead of at its start.
 *
 * Node reads the file named by NODE_EXTRA_CA_CERTS (a proxy's or a site's CA, e.g.
 * /etc/ssl/certs/ca-certificates.crt) while it starts, before any of our code runs: 40 ms of
 * every start on the machines we measure on (`node -e 0` reaches its code at 78 ms with it set,
 * 38 ms without). `sreg mount` starts two Node processes one after the other, and the mount
 * process's start is on the way to the first `ls`. So the parent hands the setting to the mount
 * process as SREG_EXTRA_CA_CERTS (app/mount-child.ts), and the mount process adds those
 * certificates to Node's bundled ones itself: one TLS context, built when the Dropbox client is
 * made, for every connection it opens (the SDK's calls, uploads, block fetches). A plain
 * http:// endpoint (the emulator) never reads the file.
 *
 * A file that cannot be read is what Node does with it too: a warning, and Node's own CAs.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

export const EXTRA_CA_ENV = 'SREG_EXTRA_CA_CERTS';

let made: { file: string; context: tls.SecureContext | undefined } | undefined;

/**
 * The TLS context with the extra CAs, or undefined (none set, or unreadable: Node's defaults).
 * Made once per process; `warn` hears about a file that cannot be used.
 */
export function extraCaContext(warn: (line: string) => void = () => undefined, env: NodeJS.ProcessEnv = process.env): tls.SecureContext | undefined {
  const file = env[EXTRA_CA_ENV];
  if (!file) return undefined;
  if (made?.file === file) return made.context;
  let context: tls.SecureContext | undefined;
  try {
    const pem = readFileSync(file, 'utf8');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate in it');
    context = tls.createSecureContext({ ca: [...tls.rootCertificates, pem] });
  } catch (e) {
    warn(`extra CA certificates (NODE_EXTRA_CA_CERTS) not used: ${file}: ${(e as Error).message}`);
  }
  made = { file, context };
  return context;
}
