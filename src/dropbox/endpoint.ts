/**
 * Where Dropbox requests go. The SDK (10.34) hard-codes https://{api,content,notify}.dropboxapi.com;
 * with an endpoint set (SREGISTRY_DROPBOX_ENDPOINT, e.g. http://127.0.0.1:8765) every host's
 * requests are sent there instead, path and query kept, with the original host forwarded in
 * `X-Sreg-Dropbox-Host` so the emulator can check that each route was called on its own host.
 *
 * The returned function behaves like node-fetch v2 (the SDK calls `res.buffer()`). Every request
 * gets node-fetch's `timeout` (connect + headers + body of these small JSON answers), unless the
 * caller sets its own (the longpoll, which waits by design): a stalled RPC call fails with a
 * FetchError of type request-timeout or body-timeout, which the retry policy treats as a stall.
 */
import https from 'node:https';
import { createRequire } from 'node:module';
import type { SecureContext } from 'node:tls';
import type { Headers, RequestInfo, RequestInit, Response } from 'node-fetch';
import { StallError } from './errors.js';

/**
 * node-fetch (with whatwg-url and its tables) is loaded at the first request, not at start-up,
 * and through require: its CommonJS build costs a third of the CPU of `import('node-fetch')`
 * (measured: 24 against 63 ms, on the mount's path to its first request).
 */
interface NodeFetch {
  default: (url: RequestInfo, init?: RequestInit) => Promise<Response>;
  Headers: typeof Headers;
}
const require = createRequire(import.meta.url);
let nodeFetchModule: Promise<NodeFetch> | undefined;
const loadNodeFetch = (): Promise<NodeFetch> => (nodeFetchModule ??= Promise.resolve().then(() => require('node-fetch') as NodeFetch));

export const DROPBOX_HOST_HEADER = 'x-sreg-dropbox-host';

export type FetchLike = (url: RequestInfo, init?: RequestInit) => Promise<Response>;

export function endpointFetch(endpoint: string | undefined, timeoutMs = 30_000, secureContext?: SecureContext): FetchLike {
  // With extra CAs (tls-ca.ts), https requests go through an agent that has them. Without an
  // agent node-fetch asks for `Connection: close`; this agent does not keep sockets either.
  const tlsAgent = secureContext ? new https.Agent({ keepAlive: false, secureContext }) : undefined;
  const agentFor = tlsAgent ? { agent: (u: URL) => (u.protocol === 'https:' ? tlsAgent : undefined) } : {};
  /** node-fetch's timeout, and its "no answer yet" failure named as the stall it is. */
  const send = async (url: RequestInfo, init: RequestInit): Promise<Response> => {
    const ms = init.timeout || timeoutMs;
    const { default: nodeFetch } = await loadNodeFetch();
    return nodeFetch(url, { ...agentFor, ...init, timeout: ms }).catch((e: unknown) => {
      if ((e as { type?: string }).type === 'request-timeout') throw new StallError('headers', ms, { cause: e });
      throw e;
    });
  };
  if (!endpoint) return (url, init = {}) => send(url, init);
  const base = new URL(endpoint);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new Error(`endpoint must be an http:// or https:// URL, got ${base.protocol}`);
  }
  return async (url, init = {}) => {
    const { Headers } = await loadNodeFetch();
    const target = new URL(typeof url === 'string' ? url : 'href' in url ? url.href : url.url);
    const originalHost = target.host;
    target.protocol = base.protocol;
    target.host = base.host;
    const headers = new Headers(init.headers);
    headers.set(DROPBOX_HOST_HEADER, originalHost);
    return send(target.toString(), { ...init, headers });
  };
}
