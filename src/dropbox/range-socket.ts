/**
 * Ranged downloads (files/download with a Range header) read by the kernel straight into the
 * caller's buffer: a small HTTP/1.1 client over keep-alive sockets opened with `onread`, so a
 * 206 answer's body never passes through Node's HTTP parser, a 64 KiB chunk per socket read,
 * or a copy out of it. Measured with the emulator unshaped (1 GiB in 4 MiB ranges, 9 at once,
 * into pooled buffers): node:http and a copy 1.70–1.94 CPU s/GiB, 423–448 MB/s, 114–120 MiB
 * RSS; this 0.38–0.40 CPU s/GiB, 766–858 MB/s, 86–87 MiB (the mount's readRange; pull and
 * uploads keep node:http, see http.ts).
 *
 * What it speaks: one request at a time per socket (no pipelining); the answer's head is read
 * into a small scratch buffer and parsed; a 206 must say the range asked for and its length
 * (Content-Length, no Transfer-Encoding), and its body then goes into the caller's buffer
 * through the socket's own reads; any other status has its (small) body read, by length,
 * chunked, or until close, and becomes the RemoteError fromHttp makes of it, as for node:http.
 * `Connection: close` closes the socket after the answer; a socket that sends bytes nobody asked
 * for, or fails, is dropped. A reused socket that the server closed while it was idle fails
 * before any byte of the answer: the request is sent once more on a new socket, not counted.
 *
 * Nothing waits forever: the socket's idle timer (`timeoutMs`) runs while a request is under
 * way (connect, head, body: StallError names the phase), and an idle pooled socket is closed
 * after KEEP_ALIVE_MS. An aborted signal destroys the socket and rejects with an AbortError.
 * The token goes only into the request's Authorization header: never into an error or a log.
 */
import net from 'node:net';
import tls from 'node:tls';
import { DROPBOX_HOST_HEADER } from './endpoint.js';
import { fromHttp, RemoteError, StallError, type StallPhase } from './errors.js';
import { CONTENT_HOST, headerSafeJson, parseAnswer } from './http.js';

const ROUTE = 'files/download';
/** An idle pooled socket is closed after this long (the server may close it sooner). */
const KEEP_ALIVE_MS = 30_000;
/** An answer's head larger than this is not Dropbox's. */
const MAX_HEAD_BYTES = 64 * 1024;
/** An error answer's body larger than this is cut (it is only shown). */
const MAX_ERROR_BODY_BYTES = 1024 * 1024;

/**
 * Where a body goes when it is not one buffer: the pieces it hands out in turn (a run of cache
 * blocks, each in its own pooled buffer). The socket reads straight into each room; bytes read
 * while no room was ready (the first read after a pause, or body bytes that came with the head)
 * are copied in.
 */
export interface BodySink {
  /**
   * Room for the body's next bytes (not empty; only what is left of the body is used). A
   * promise pauses the socket, its stall timer off, until it resolves; a rejection fails the read.
   */
  room(): Buffer | Promise<Buffer>;
  /** `n` more bytes went into the room last given, after the ones before. */
  wrote(n: number): void;
}

export interface RangeRead {
  token: string;
  arg: unknown;
  start: number;
  /** exclusive */
  end: number;
  /** Takes exactly end - start bytes: one buffer, or a sink's rooms in turn. */
  into: Buffer | BodySink;
  signal?: AbortSignal;
  /** Bytes of the body put into `into` so far: a retry resumes after them. */
  progress: { bytes: number };
}

interface Head {
  status: number;
  headers: Map<string, string>;
}

type State = 'idle' | 'head' | 'body' | 'error-body' | 'dead';

/** One keep-alive connection; one request at a time. */
class Connection {
  readonly socket: net.Socket;
  private state: State = 'idle';
  private readonly scratch = Buffer.allocUnsafe(16 * 1024);
  private head: Buffer[] = [];
  private headBytes = 0;
  private job: RangeRead | undefined;
  private want = 0;
  private phase: StallPhase = 'connect';
  private errorHead: Head | undefined;
  private errorBody: Buffer[] = [];
  private errorBodyBytes = 0;
  private errorLength: number | 'chunked' | 'close' = 0;
  /** A sink's room being filled, and how much of it is. */
  private room: Buffer | undefined;
  private roomUsed = 0;
  /** Body bytes read while no room was ready (copied out of the scratch), waiting for one. */
  private leftover: Buffer | undefined;
  /** The sink's next room is a promise: the socket is paused until it resolves. */
  private waitingRoom = false;
  /** The answer said `Connection: close`, or the socket cannot be trusted with another request. */
  closeAfter = false;
  /** Whether any byte of the current answer came: a reused socket that fails before is stale. */
  answered = false;
  reused = false;
  private settle: ((e?: Error) => void) | undefined;

  constructor(
    base: URL,
    private readonly timeoutMs: number,
    /** The socket of an idle connection closed: it leaves the pool. */
    private readonly onIdleClose: (c: Connection) => void,
    /** TLS with extra CAs (tls-ca.ts); Node's defaults without. */
    secureContext?: tls.SecureContext,
  ) {
    const port = Number(base.port) || (base.protocol === 'https:' ? 443 : 80);
    const onread = { buffer: (): Uint8Array => this.nextBuffer(), callback: (n: number, buf: Uint8Array): boolean => this.onData(n, buf) };
    this.socket =
      base.protocol === 'https:'
        ? // tls.connect takes onread as net.connect does (Node's docs); @types/node leaves it out.
          tls.connect({ host: base.hostname, port, servername: net.isIP(base.hostname) ? undefined : base.hostname, ALPNProtocols: ['http/1.1'], onread, ...(secureContext ? { secureContext } : {}) } as tls.ConnectionOptions)
        : net.connect({ host: base.hostname, port, onread });
    this.socket.setNoDelay(true);
    this.socket.once(base.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      if (this.phase === 'connect') this.phase = 'headers';
    });
    this.socket.setTimeout(timeoutMs);
    this.socket.on('timeout', () => {
      if (this.state === 'idle') {
        this.onIdleClose(this);
        return this.destroy();
      }
      this.fail(new StallError(this.phase, timeoutMs));
    });
    this.socket.on('error', (e) => this.fail(e));
    this.socket.on('close', () => {
      if (this.state === 'idle') this.onIdleClose(this);
      // An error answer without a length ends with its connection.
      if (this.state === 'error-body' && this.errorLength === 'close') return this.finishError(Buffer.concat(this.errorBody, this.errorBodyBytes), true);
      this.fail(Object.assign(new Error('premature close: the connection closed before the answer ended'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    });
  }

  get alive(): boolean {
    return this.state === 'idle' && !this.socket.destroyed;
  }

  /** Sends the request and resolves once its answer has been read whole (or rejects). */
  send(request: string, job: RangeRead): Promise<void> {
    this.job = job;
    this.want = job.end - job.start;
    this.head = [];
    this.headBytes = 0;
    this.answered = false;
    this.closeAfter = false;
    this.errorHead = undefined;
    this.room = undefined;
    this.roomUsed = 0;
    this.leftover = undefined;
    this.waitingRoom = false;
    this.state = 'head';
    if (this.phase !== 'connect') this.phase = 'headers';
    this.socket.setTimeout(this.timeoutMs);
    return new Promise<void>((resolve, reject) => {
      this.settle = (e) => {
        this.settle = undefined;
        this.job = undefined;
        if (e) reject(e);
        else resolve();
      };
      this.socket.write(request);
    });
  }

  /** Idle in the pool: closed after KEEP_ALIVE_MS. */
  park(): void {
    this.reused = true;
    this.socket.setTimeout(KEEP_ALIVE_MS);
  }

  destroy(e?: Error): void {
    this.state = 'dead';
    this.socket.destroy(e);
  }

  /** Fails the request under way (if any) and drops the socket. */
  fail(e: Error): void {
    const settle = this.settle;
    if (this.state !== 'dead') this.destroy();
    settle?.(e);
  }

  private nextBuffer(): Uint8Array {
    if (this.state === 'body' && this.job) {
      const { into, progress } = this.job;
      if (Buffer.isBuffer(into)) return into.subarray(progress.bytes, this.want);
      if (this.room && !this.leftover) return this.room.subarray(this.roomUsed, Math.min(this.room.length, this.roomUsed + this.want - progress.bytes));
    }
    return this.scratch;
  }

  private onData(n: number, buf: Uint8Array): boolean {
    if (n <= 0) return true;
    if (this.state === 'body') {
      if (Buffer.isBuffer(this.job!.into)) {
        // The read went into the caller's buffer (nextBuffer): nothing to copy.
        this.job!.progress.bytes += n;
        if (this.job!.progress.bytes >= this.want) this.done();
        return true;
      }
      if (buf.buffer === this.room?.buffer && buf.byteOffset === this.room.byteOffset + this.roomUsed) {
        this.wroteRoom(n);
        return this.state !== 'body' || this.ensureRoom();
      }
      return this.absorb(Buffer.from(buf.buffer, buf.byteOffset, n));
    }
    const bytes = Buffer.from(buf.buffer, buf.byteOffset, n);
    if (this.state === 'head') this.onHead(bytes);
    else if (this.state === 'error-body') this.onErrorBody(bytes);
    else this.fail(new RemoteError('api', ROUTE, 'Dropbox sent bytes after its answer ended'));
    return !this.waitingRoom; // the head's read may have brought body bytes that wait for a room
  }

  private onHead(bytes: Buffer): void {
    this.answered = true;
    this.head.push(Buffer.from(bytes)); // the scratch is read into again
    this.headBytes += bytes.length;
    const all = this.head.length === 1 ? this.head[0]! : Buffer.concat(this.head, this.headBytes);
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.headBytes > MAX_HEAD_BYTES) this.fail(new RemoteError('api', ROUTE, `Dropbox answered with a head longer than ${MAX_HEAD_BYTES} bytes`));
      return;
    }
    const head = parseHead(all.toString('latin1', 0, end));
    const rest = all.subarray(end + 4);
    this.head = [];
    this.headBytes = 0;
    if (!head) return this.fail(new RemoteError('api', ROUTE, 'Dropbox answered something that is not HTTP'));
    if (head.status >= 100 && head.status < 200) {
      // An interim answer (100 Continue): the real one follows.
      if (rest.length > 0) this.onHead(rest);
      return;
    }
    this.phase = 'body';
    this.closeAfter = (head.headers.get('connection') ?? '').toLowerCase().includes('close');
    if (head.status === 206) this.onRangeHead(head, rest);
    else this.onErrorHead(head, rest);
  }

  private onRangeHead(head: Head, rest: Buffer): void {
    const job = this.job!;
    const cr = head.headers.get('content-range');
    const length = head.headers.get('content-length');
    if (typeof cr !== 'string' || !cr.startsWith(`bytes ${job.start}-${job.end - 1}/`)) {
      return this.fail(new RemoteError('api', ROUTE, `Dropbox answered a range request with the wrong range (${cr ?? 'none'})`));
    }
    if (head.headers.has('transfer-encoding') || length === undefined || Number(length) !== this.want) {
      return this.fail(new RemoteError('api', ROUTE, `Dropbox answered a range of ${this.want} bytes with ${length === undefined ? 'no length' : `a length of ${length}`}${head.headers.has('transfer-encoding') ? ' and a transfer encoding' : ''}`));
    }
    // Bytes past the answer (in the same read): the answer stands, the connection goes.
    if (rest.length > this.want) this.closeAfter = true;
    this.state = 'body';
    if (!Buffer.isBuffer(job.into)) {
      this.absorb(rest.subarray(0, this.want));
      return;
    }
    job.progress.bytes += rest.copy(job.into, job.progress.bytes, 0, Math.min(rest.length, this.want));
    if (job.progress.bytes >= this.want) this.done();
  }

  // ---- a body into a sink's rooms ----

  private wroteRoom(n: number): void {
    this.roomUsed += n;
    this.job!.progress.bytes += n;
    (this.job!.into as BodySink).wrote(n);
    if (this.job!.progress.bytes >= this.want) this.done();
  }

  /**
   * Body bytes not read into a room (they are in the scratch, read again next): copied into
   * rooms; what no room is ready for yet waits, copied, with the socket paused. False: paused.
   */
  private absorb(bytes: Buffer): boolean {
    let at = 0;
    while (at < bytes.length && this.state === 'body') {
      if (!this.ensureRoom()) {
        this.leftover = Buffer.from(bytes.subarray(at));
        return false;
      }
      const room = this.room!;
      const n = bytes.copy(room, this.roomUsed, at, at + Math.min(room.length - this.roomUsed, this.want - this.job!.progress.bytes));
      at += n;
      this.wroteRoom(n);
    }
    // Bytes past the answer: it stands, the connection goes.
    if (at < bytes.length) this.closeAfter = true;
    return this.state === 'body' ? this.ensureRoom() : true;
  }

  /**
   * Whether a room with space is ready (asks the sink for the next one when the current is
   * full). When the sink answers with a promise the socket pauses, its stall timer off (the wait
   * is ours, not the server's), and reading resumes once the room is there.
   */
  private ensureRoom(): boolean {
    if (this.room && this.roomUsed < this.room.length) return true;
    this.room = undefined;
    this.roomUsed = 0;
    const job = this.job!;
    const next = (job.into as BodySink).room();
    if (Buffer.isBuffer(next)) return this.takeRoom(next);
    this.waitingRoom = true;
    this.socket.setTimeout(0);
    next.then(
      (buf) => {
        if (this.job !== job || this.state !== 'body') return;
        this.waitingRoom = false;
        if (!this.takeRoom(buf)) return;
        const left = this.leftover;
        this.leftover = undefined;
        if (left && !this.absorb(left)) return; // waits for another room
        if ((this.state as State) === 'dead') return;
        // Reading again, also when the leftover ended the answer: an idle socket must see its close.
        if ((this.state as State) === 'body') this.socket.setTimeout(this.timeoutMs);
        this.socket.resume();
      },
      (e: unknown) => {
        if (this.job === job) this.fail(e instanceof Error ? e : new Error(String(e)));
      },
    );
    return false;
  }

  private takeRoom(buf: Buffer): boolean {
    if (buf.length === 0) {
      this.fail(new RangeError('a body sink gave an empty room'));
      return false;
    }
    this.room = buf;
    this.roomUsed = 0;
    return true;
  }

  private onErrorHead(head: Head, rest: Buffer): void {
    this.errorHead = head;
    this.errorBody = [];
    this.errorBodyBytes = 0;
    const te = (head.headers.get('transfer-encoding') ?? '').toLowerCase();
    const length = head.headers.get('content-length');
    this.errorLength = te.includes('chunked') ? 'chunked' : length !== undefined && /^\d+$/.test(length) ? Number(length) : 'close';
    if (this.errorLength === 'close') this.closeAfter = true;
    this.state = 'error-body';
    this.onErrorBody(rest);
  }

  private onErrorBody(bytes: Buffer): void {
    if (bytes.length > 0) {
      this.errorBody.push(Buffer.from(bytes));
      this.errorBodyBytes += bytes.length;
    }
    const raw = Buffer.concat(this.errorBody, this.errorBodyBytes);
    let body: Buffer | undefined;
    let used = raw.length;
    if (this.errorLength === 'chunked') {
      const d = dechunk(raw);
      if (d) ({ body, end: used } = d);
    } else if (typeof this.errorLength === 'number' && raw.length >= this.errorLength) {
      body = raw.subarray(0, (used = this.errorLength));
    }
    if (body === undefined && this.errorBodyBytes <= MAX_ERROR_BODY_BYTES) return; // more to come (or the close ends it)
    // Cut at the size limit, or bytes past the answer: the connection goes.
    this.finishError(body ?? raw, body === undefined || raw.length > used);
  }

  /** The error answer as fromHttp makes it; the socket goes unless the answer ended cleanly. */
  private finishError(body: Buffer, dropSocket: boolean): void {
    const head = this.errorHead!;
    const settle = this.settle;
    const e = fromHttp(ROUTE, head.status, parseAnswer(body), head.headers.get('retry-after'));
    if (dropSocket) this.destroy();
    else this.state = 'idle';
    settle?.(e);
  }

  private done(): void {
    this.state = 'idle';
    const settle = this.settle;
    settle?.();
  }
}

function parseHead(text: string): Head | undefined {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const k = line.slice(0, i).trim().toLowerCase();
    const v = line.slice(i + 1).trim();
    headers.set(k, headers.has(k) ? `${headers.get(k)}, ${v}` : v);
  }
  return { status: Number(m[1]), headers };
}

/**
 * A chunked body decoded and where its framing ended in `raw` (after the last chunk and its
 * trailers), or undefined while that has not come.
 */
export function dechunk(raw: Buffer): { body: Buffer; end: number } | undefined {
  const parts: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', pos);
    if (eol < 0) return undefined;
    const size = parseInt(raw.toString('latin1', pos, eol).split(';')[0]!.trim(), 16);
    if (!Number.isFinite(size) || size < 0) return { body: Buffer.concat(parts), end: raw.length }; // not chunked after all: what came
    if (size === 0) {
      // No trailers ("0\r\n\r\n"), or trailers up to an empty line.
      const end = raw.indexOf('\r\n', eol + 2) === eol + 2 ? eol + 4 : raw.indexOf('\r\n\r\n', eol + 2) + 4;
      return end >= 4 && end <= raw.length ? { body: Buffer.concat(parts), end } : undefined;
    }
    if (raw.length < eol + 2 + size + 2) return undefined;
    parts.push(raw.subarray(eol + 2, eol + 2 + size));
    pos = eol + 2 + size + 2;
  }
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}

export class RangeReader {
  private readonly base: URL;
  private readonly viaEndpoint: boolean;
  private readonly idle: Connection[] = [];
  private closed = false;

  constructor(
    endpoint: string | undefined,
    /** Idle sockets kept at most. */
    private readonly maxIdle: number,
    /** Connect, answer-head and idle-body timeout. */
    private readonly timeoutMs = 30_000,
    /** TLS with extra CAs (tls-ca.ts). */
    private readonly secureContext?: tls.SecureContext,
  ) {
    this.viaEndpoint = endpoint !== undefined;
    this.base = new URL(endpoint ?? `https://${CONTENT_HOST}`);
  }

  get label(): string {
    return this.viaEndpoint ? this.base.origin : 'Dropbox';
  }

  /**
   * Reads [start, end) of the source in `arg` into `into`; `progress.bytes` counts what arrived,
   * also when it fails (a cut midway: the caller resumes after them).
   */
  async read(job: RangeRead): Promise<void> {
    if (Buffer.isBuffer(job.into) && job.into.length < job.end - job.start) throw new RangeError(`a ${job.into.length}-byte buffer cannot take ${job.end - job.start} bytes`);
    if (job.end <= job.start) return;
    if (job.signal?.aborted) throw abortError(job.signal);
    if (this.closed) throw new RemoteError('network', ROUTE, 'the connection pool is closed');
    const request = this.requestHead(job);
    for (;;) {
      const conn = this.connection();
      const wasReused = conn.reused;
      const onAbort = (): void => conn.fail(abortError(job.signal!));
      job.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        await conn.send(request, job);
      } catch (e) {
        // An error answer read whole leaves its connection usable; any other failure drops it.
        if (e instanceof RemoteError && conn.alive) this.release(conn);
        else conn.destroy();
        if (job.signal?.aborted) throw abortError(job.signal);
        // A pooled socket the server closed while it sat idle: once more on a fresh one.
        if (wasReused && !conn.answered && job.progress.bytes === 0 && !(e instanceof StallError)) continue;
        throw e;
      } finally {
        job.signal?.removeEventListener('abort', onAbort);
      }
      this.release(conn);
      return;
    }
  }

  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.destroy();
  }

  private requestHead(job: RangeRead): string {
    const lines = [
      `POST /2/${ROUTE} HTTP/1.1`,
      `Host: ${this.base.host}`,
      `Authorization: Bearer ${job.token}`,
      `Dropbox-API-Arg: ${headerSafeJson(job.arg)}`,
      `Range: bytes=${job.start}-${job.end - 1}`,
      'Content-Length: 0',
      'Connection: keep-alive',
    ];
    if (this.viaEndpoint) lines.push(`${DROPBOX_HOST_HEADER}: ${CONTENT_HOST}`);
    return `${lines.join('\r\n')}\r\n\r\n`;
  }

  private connection(): Connection {
    for (let c = this.idle.pop(); c; c = this.idle.pop()) if (c.alive) return c;
    return new Connection(this.base, this.timeoutMs, (c) => {
      const i = this.idle.indexOf(c);
      if (i >= 0) this.idle.splice(i, 1);
    }, this.secureContext);
  }

  private release(conn: Connection): void {
    if (this.closed || conn.closeAfter || !conn.alive || this.idle.length >= this.maxIdle) return conn.destroy();
    conn.park();
    this.idle.push(conn);
  }
}
