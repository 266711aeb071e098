/**
 * One API request as the routes see it: its decoded argument, its body (streamed to disk with
 * content_hash, size limit and pacing), and the ways to answer (JSON, or a file's bytes with
 * Range support). Every byte in or out is counted for `/__emulator/stats`, paced to the
 * configured bandwidth, and cut when a `cut` fault asks (or held when a `stall` fault asks).
 */
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ContentHasher } from '../dropbox/content-hash.js';
import { CoalescingWriter } from '../util/coalesce.js';
import { Pacer, type Control } from './control.js';
import type { Json } from './errors.js';

/** Largest body of one upload request (dropbox-api.md §5.4). */
export const MAX_UPLOAD_REQUEST_BYTES = 150 * 1024 * 1024;

export class PayloadTooLarge extends Error {}

/** Escapes every char ≥ U+007F as \uXXXX so the JSON is header-safe. */
export function headerSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export class RequestContext {
  /** Set by a `cut` fault: drop the connection after this many response-body bytes (-1 = half). */
  cutAfterBytes: number | undefined;
  tokenSha = '';
  /** Checks a download's `Dropbox-API-Result` against the specification (server.ts). */
  onResult: (value: unknown) => void = () => undefined;
  /** Set by a `stall` fault: after this many response-body bytes (-1 = half) send nothing more, keep the connection. */
  stallAfterBytes: number | undefined;

  constructor(
    readonly route: string,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly control: Control,
  ) {}

  private pacer(): Pacer | undefined {
    const bw = this.control.shaping.bandwidthBytesPerSec;
    return bw > 0 ? new Pacer(bw) : undefined;
  }

  /** Reads a small body (RPC JSON) into memory. */
  async readSmallBody(limitBytes = 4 * 1024 * 1024): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of this.req as AsyncIterable<Buffer>) {
      total += chunk.length;
      this.control.stats.bytesReceived += chunk.length;
      if (total > limitBytes) throw new PayloadTooLarge();
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  /**
   * Streams the body into `file` at `position` (append when undefined), hashing it. Stops with
   * PayloadTooLarge past the 150 MiB limit (the rest of the body is drained by the caller).
   */
  async receiveBody(file: FileHandle, position?: number): Promise<{ size: number; contentHash: string }> {
    const hasher = new ContentHasher();
    const pacer = this.pacer();
    const start = position ?? (await file.stat()).size;
    const out = new CoalescingWriter(file, start);
    try {
      for await (const chunk of this.req as AsyncIterable<Buffer>) {
        this.control.stats.bytesReceived += chunk.length;
        if (hasher.bytes + chunk.length > MAX_UPLOAD_REQUEST_BYTES) throw new PayloadTooLarge();
        hasher.update(chunk);
        await out.write(chunk);
        if (pacer) await pacer.take(chunk.length);
      }
    } finally {
      await out.flush();
    }
    return { size: hasher.bytes, contentHash: hasher.digest() };
  }

  /** Drains what is left of the request body (after an early answer) without keeping it. */
  drain(): void {
    if (!this.req.readableEnded) {
      this.req.on('data', (c: Buffer) => (this.control.stats.bytesReceived += c.length));
      this.req.resume();
    }
  }

  /** A `stall` fault before any answer: the request is accepted and never answered; resolves when the client gives up. */
  stall(): Promise<void> {
    const sock = this.req.socket;
    if (sock.destroyed) return Promise.resolve();
    return new Promise((resolve) => sock.once('close', () => resolve()));
  }

  private meter(totalBytes: number): Transform {
    const pacer = this.pacer();
    const at = (n: number | undefined): number => (n === undefined ? Infinity : n < 0 ? Math.floor(totalBytes / 2) : n);
    const cut = at(this.cutAfterBytes);
    const stallAt = at(this.stallAfterBytes);
    let sent = 0;
    const stats = this.control.stats;
    const res = this.res;
    return new Transform({
      transform(chunk: Buffer, _enc, done) {
        if (sent + chunk.length > stallAt) {
          // Send what is allowed, then nothing: the headers are out, the body stops, the connection stays.
          const piece = chunk.subarray(0, Math.max(0, stallAt - sent));
          stats.bytesSent += piece.length;
          sent = stallAt;
          res.write(piece);
          const sock = res.socket;
          if (!sock || sock.destroyed) done(new CutError());
          else sock.once('close', () => done(new CutError()));
          return;
        }
        if (sent + chunk.length > cut) {
          const piece = chunk.subarray(0, Math.max(0, cut - sent));
          stats.bytesSent += piece.length;
          // Flush what is allowed, then drop the connection mid-body.
          res.write(piece, () => res.socket?.destroy());
          sent = cut;
          done(new CutError());
          return;
        }
        sent += chunk.length;
        stats.bytesSent += chunk.length;
        if (pacer) pacer.take(chunk.length).then(() => done(null, chunk), done);
        else done(null, chunk);
      },
    });
  }

  sendJson(status: number, body: Json | string, headers: Record<string, string> = {}): Promise<void> {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    const buf = Buffer.from(text);
    this.res.writeHead(status, {
      'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
      'content-length': String(buf.length),
      ...headers,
    });
    return this.sendBody(buf);
  }

  private async sendBody(buf: Buffer): Promise<void> {
    const meter = this.meter(buf.length);
    try {
      // Chunked so pacing and cuts apply inside the body too.
      const pieces: Buffer[] = [];
      for (let i = 0; i < buf.length; i += 65536) pieces.push(buf.subarray(i, i + 65536));
      await pipeline(Readable.from(pieces), meter, this.res);
    } catch (e) {
      if (!(e instanceof CutError) && !isClientGone(e)) throw e;
    }
  }

  /** Streams [start, endInclusive] of a file to the response (headers already written). */
  async sendFile(file: string, start: number, endInclusive: number): Promise<void> {
    const total = endInclusive - start + 1;
    if (total <= 0) {
      this.res.end();
      return;
    }
    const chunkBytes = this.control.shaping.bandwidthBytesPerSec > 0 ? 64 * 1024 : 1024 * 1024;
    try {
      await pipeline(createReadStream(file, { start, end: endInclusive, highWaterMark: chunkBytes }), this.meter(total), this.res);
    } catch (e) {
      if (!(e instanceof CutError) && !isClientGone(e)) throw e;
    }
  }
}

class CutError extends Error {}

function isClientGone(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'EPIPE' || code === 'ECONNRESET' || code === 'ERR_STREAM_DESTROYED';
}

export async function openForWrite(file: string, flags: 'w' | 'r+' | 'a'): Promise<FileHandle> {
  return open(file, flags, 0o600);
}
