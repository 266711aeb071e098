/**
 * Plain HTTP for the content routes (ranged downloads and uploads stream; the SDK buffers
 * whole bodies). Keep-alive agents, one per scheme, sized for the transfer workers; requests
 * go to the endpoint when one is set (tests, the emulator), else to Dropbox's content host.
 *
 * Nothing waits forever: every request has one idle timer (`timeoutMs`) on its socket, armed
 * from the moment it is queued: no connection, no response headers (after the body was sent),
 * or no byte of the answer for that long fails the request with a StallError naming the
 * phase, which the retry policy retries a few times. (undici was considered and not tried:
 * the timers were all that was missing here; a switch would need its own measurement.)
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import type { SecureContext } from 'node:tls';
import { DROPBOX_HOST_HEADER } from './endpoint.js';
import { describeBody, fromHttp, notTheApi, RemoteError, StallError, type StallPhase } from './errors.js';

export const CONTENT_HOST = 'content.dropboxapi.com';

/** An answer's body: JSON when it parses, else its text. */
export function parseAnswer(bytes: Buffer): unknown {
  const text = bytes.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export function headerSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export interface ContentRequest {
  route: string;
  token: string;
  arg: unknown;
  headers?: Record<string, string>;
  /** Upload body: a stream (or a Buffer) and its length. */
  body?: { stream: Readable | Buffer; length: number };
  signal?: AbortSignal;
}

export class Transport {
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly viaEndpoint: boolean;

  constructor(
    endpoint: string | undefined,
    maxSockets: number,
    /** Connect, response-header and idle-body timeout. */
    readonly timeoutMs = 30_000,
    /** TLS with extra CAs (tls-ca.ts); Node's defaults without. */
    secureContext?: SecureContext,
  ) {
    this.viaEndpoint = endpoint !== undefined;
    this.base = new URL(endpoint ?? `https://${CONTENT_HOST}`);
    this.agent =
      this.base.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets, keepAliveMsecs: 30_000, ...(secureContext ? { secureContext } : {}) })
        : new http.Agent({ keepAlive: true, maxSockets, keepAliveMsecs: 30_000 });
  }

  get label(): string {
    return this.viaEndpoint ? this.base.origin : 'Dropbox';
  }

  /** Sends a content-route request; resolves with the response once its headers arrive. */
  request(r: ContentRequest): Promise<IncomingMessage> {
    const lib = this.base.protocol === 'https:' ? https : http;
    const headers: Record<string, string | number> = {
      authorization: `Bearer ${r.token}`,
      'dropbox-api-arg': headerSafeJson(r.arg),
      ...r.headers,
    };
    if (this.viaEndpoint) headers[DROPBOX_HOST_HEADER] = CONTENT_HOST;
    if (r.body) {
      headers['content-type'] = 'application/octet-stream';
      headers['content-length'] = r.body.length;
    }
    return new Promise((resolve, reject) => {
      let phase: StallPhase = 'connect';
      let response: IncomingMessage | undefined;
      const req = lib.request(new URL(`/2/${r.route}`, this.base), { method: 'POST', headers, agent: this.agent, signal: r.signal }, (res) => {
        phase = 'body';
        response = res;
        // Past the answer's end the socket goes back to the pool: its idle timer is ours no more.
        res.once('end', () => req.setTimeout(0));
        resolve(res);
      });
      req.setTimeout(this.timeoutMs, () => {
        if (response?.complete) return;
        const e = new StallError(phase, this.timeoutMs);
        response?.destroy(e);
        req.destroy(e);
      });
      req.once('socket', (sock) => {
        if (!sock.connecting) phase = 'headers';
        else sock.once('connect', () => (phase = phase === 'connect' ? 'headers' : phase));
      });
      req.on('error', reject);
      const body = r.body?.stream;
      if (!body) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        body.on('error', (e) => req.destroy(e));
        body.pipe(req);
      }
    });
  }

  /** Reads a whole (small) answer body: JSON when it parses, else text. */
  static async readBody(res: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
    return parseAnswer(Buffer.concat(chunks));
  }

  /** The RemoteError for a non-success answer (reads its body). */
  static async failure(route: string, res: IncomingMessage): Promise<RemoteError> {
    const body = await Transport.readBody(res);
    const retryAfter = res.headers['retry-after'];
    return fromHttp(route, res.statusCode ?? 0, body, typeof retryAfter === 'string' ? retryAfter : undefined);
  }

  /** A JSON call on a content route (uploads): the parsed result (a JSON object, or null) or a RemoteError. */
  async json<T>(r: ContentRequest): Promise<T> {
    const res = await this.request(r);
    if (res.statusCode !== 200) throw await Transport.failure(r.route, res);
    const body = await Transport.readBody(res);
    if (typeof body !== 'object' || Array.isArray(body)) throw notTheApi(r.route, describeBody(body), this.label);
    return body as T;
  }

  close(): void {
    this.agent.destroy();
  }
}
