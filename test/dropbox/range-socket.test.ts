/**
 * The ranged-download sockets (src/dropbox/range-socket.ts) against a scripted HTTP/1.1 server
 * on a bare TCP socket, so that every way an answer can come is under the test's control: the
 * head and body cut at any byte (fast-check), keep-alive reuse and a socket the server closed
 * while it sat idle, error answers by length, chunked or until close, 100 Continue, a wrong
 * range, bytes past the answer, a stall mid-body, an abort. The readRange tests
 * (download.test.ts, stall.test.ts, cache/outage.test.ts) run the same code against the emulator.
 */
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { RemoteError, StallError } from '../../src/dropbox/errors.js';
import { dechunk, RangeReader, type BodySink, type RangeRead } from '../../src/dropbox/range-socket.js';

const TOKEN = 'sl.secret-token-never-shown';

interface Request {
  head: string;
  range: [number, number];
  socket: net.Socket;
  /** Which connection (0, 1, …) it came on. */
  conn: number;
}

/**
 * A server that hands each request (one at a time per connection) to `answer`, which writes
 * the answer itself on `req.socket`.
 */
async function server(t: ExecutionContext, answer: (req: Request) => void | Promise<void>): Promise<{ url: string; requests: Request[]; sockets: Set<net.Socket> }> {
  const requests: Request[] = [];
  const sockets = new Set<net.Socket>();
  let conns = 0;
  const srv = net.createServer((socket) => {
    const conn = conns++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n\r\n'); i >= 0; i = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, i);
        buf = buf.slice(i + 4);
        const m = /\r\nRange: bytes=(\d+)-(\d+)/i.exec(head);
        const req = { head, range: [Number(m?.[1]), Number(m?.[2]) + 1] as [number, number], socket, conn };
        requests.push(req);
        void answer(req);
      }
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => srv.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`, requests, sockets };
}

const DATA = randomBytes(3 * 65536 + 123);

function partial(start: number, end: number, extra = ''): Buffer {
  return Buffer.concat([
    Buffer.from(`HTTP/1.1 206 Partial Content\r\nContent-Range: bytes ${start}-${end - 1}/${DATA.length}\r\nContent-Length: ${end - start}\r\n${extra}\r\n`, 'latin1'),
    DATA.subarray(start, end),
  ]);
}

function job(start: number, end: number, over: Partial<RangeRead> = {}): RangeRead & { into: Buffer } {
  return { token: TOKEN, arg: { path: 'rev:0123456789abcdef' }, start, end, into: Buffer.alloc(end - start), progress: { bytes: 0 }, ...over } as RangeRead & { into: Buffer };
}

/**
 * A sink whose rooms have the sizes in `sizes` (in turn, the last repeated); a room whose
 * `delays` entry is a number comes after that many ms (the socket pauses meanwhile), else at
 * once. `got` is what it was given, in order.
 */
function sink(sizes: number[], delays: (number | undefined)[] = []): BodySink & { got: () => Buffer; wrote: (n: number) => void; rooms: number } {
  const parts: Buffer[] = [];
  let used = 0;
  let current: Buffer | undefined;
  const s = {
    rooms: 0,
    room(): Buffer | Promise<Buffer> {
      if (current) parts.push(current.subarray(0, used));
      const i = s.rooms++;
      current = Buffer.alloc(sizes[Math.min(i, sizes.length - 1)]!);
      used = 0;
      const d = delays[i];
      const room = current;
      return d === undefined ? room : new Promise<Buffer>((r) => setTimeout(() => r(room), d));
    },
    wrote(n: number): void {
      used += n;
      if (used > current!.length) throw new Error('wrote past the room');
    },
    got: (): Buffer => Buffer.concat(current ? [...parts, current.subarray(0, used)] : parts),
  };
  return s;
}

/** Writes `bytes` in pieces cut at `cuts` (offsets), each its own write. */
async function writeCut(socket: net.Socket, bytes: Buffer, cuts: number[]): Promise<void> {
  let at = 0;
  for (const c of [...new Set(cuts)].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b).concat(bytes.length)) {
    socket.write(bytes.subarray(at, c));
    at = c;
    await new Promise((r) => setImmediate(r));
  }
}

/** A server answering each range cut where the last `cutAt` said, and a reader of it. */
async function cutServer(t: ExecutionContext): Promise<{ srv: Awaited<ReturnType<typeof server>>; reader: RangeReader; cutAt: (c: number[]) => void }> {
  let cuts: number[] = [];
  const srv = await server(t, (req) => writeCut(req.socket, partial(...req.range), cuts));
  const reader = new RangeReader(srv.url, 4, 5000);
  t.teardown(() => reader.close());
  return { srv, reader, cutAt: (c) => void (cuts = c.concat(c.map((x) => x * 97))) };
}

test('a range lands in the caller buffer byte for byte however the answer is cut, and the connection is reused', async (t) => {
  const { srv, reader, cutAt } = await cutServer(t);
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: DATA.length - 1 }), fc.integer({ min: 1, max: DATA.length }), fc.array(fc.nat({ max: 300 }), { maxLength: 6 }), async (start, len, c) => {
      const end = Math.min(DATA.length, start + len);
      cutAt(c);
      const j = job(start, end);
      await reader.read(j);
      return j.progress.bytes === end - start && j.into.equals(DATA.subarray(start, end));
    }),
    { numRuns: 60 },
  );
  t.true(srv.requests.length >= 60);
  t.is(new Set(srv.requests.map((r) => r.conn)).size, 1, 'one keep-alive connection for reads one after the other');
  const head = srv.requests[0]!.head;
  t.regex(head, /^POST \/2\/files\/download HTTP\/1\.1\r\n/);
  t.regex(head, /\r\nAuthorization: Bearer sl\.secret-token-never-shown\r\n/);
  t.regex(head, /\r\nDropbox-API-Arg: \{"path":"rev:0123456789abcdef"\}\r\n/);
  t.regex(head, /\r\nx-sreg-dropbox-host: content\.dropboxapi\.com/i, 'the content host, forwarded to the endpoint');
});

test('a pooled connection the server closed while idle: the read goes out again on a new one, once', async (t) => {
  const srv = await server(t, (req) => {
    req.socket.end(partial(...req.range)); // answers, then closes its side
  });
  const reader = new RangeReader(srv.url, 4, 5000);
  t.teardown(() => reader.close());
  await reader.read(job(0, 100));
  await new Promise((r) => setTimeout(r, 50));
  const j = job(100, 300);
  await reader.read(j);
  t.true(j.into.equals(DATA.subarray(100, 300)));
  t.is(srv.requests.length, 2, 'the closed socket was noticed and not written to, or written to and retried');
});

test('a keep-alive socket that dies between the request and the answer is retried on a new one, not counted', async (t) => {
  let first = true;
  const srv = await server(t, (req) => {
    if (req.conn === 0 && !first) return void req.socket.destroy(); // the second request on conn 0: reset, no answer
    first = false;
    req.socket.write(partial(...req.range));
  });
  const reader = new RangeReader(srv.url, 4, 5000);
  t.teardown(() => reader.close());
  await reader.read(job(0, 10));
  const j = job(10, 20);
  await reader.read(j);
  t.true(j.into.equals(DATA.subarray(10, 20)));
  t.deepEqual(srv.requests.map((r) => r.conn), [0, 0, 1]);
});

test('error answers become the RemoteError fromHttp makes: by length, chunked, until close; Retry-After is kept; the token is in none', async (t) => {
  const body = JSON.stringify({ error_summary: 'path/not_found/..', error: { '.tag': 'path', path: { '.tag': 'not_found' } } });
  const chunked = (s: string): string => `${s.length.toString(16)}\r\n${s.slice(0, 10)}`;
  const kinds: Record<number, (req: Request) => void> = {
    0: (req) => req.socket.write(`HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`),
    1: (req) => {
      req.socket.write(`HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(body)}`);
      setTimeout(() => req.socket.write(`${body.slice(10)}\r\n0\r\n\r\n`), 20);
    },
    2: (req) => req.socket.end(`HTTP/1.1 409 Conflict\r\nConnection: close\r\n\r\n${body}`),
    3: (req) => req.socket.write('HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n'),
  };
  let n = 0;
  const srv = await server(t, (req) => kinds[n++]!(req));
  const reader = new RangeReader(srv.url, 4, 5000);
  t.teardown(() => reader.close());
  for (const label of ['length', 'chunked', 'until close']) {
    const e = await t.throwsAsync(reader.read(job(0, 10)), { instanceOf: RemoteError }, label);
    t.is(e?.code, 'not_found', `${label}: ${e?.message}`);
    t.false(e.message.includes(TOKEN));
  }
  const e = await t.throwsAsync(reader.read(job(0, 10)), { instanceOf: RemoteError });
  t.is(e?.code, 'rate_limited');
  t.is(e?.opts.retryAfterMs, 7000);
  t.deepEqual(srv.requests.map((r) => r.conn), [0, 0, 0, 1], 'an error answer read whole keeps its connection; one that ends with it does not');
});

test('an interim 100 Continue is skipped; the real answer follows on the same read', async (t) => {
  const srv = await server(t, (req) => {
    req.socket.write(Buffer.concat([Buffer.from('HTTP/1.1 100 Continue\r\n\r\n'), partial(...req.range)]));
  });
  const reader = new RangeReader(srv.url, 4, 5000);
  t.teardown(() => reader.close());
  const j = job(5, 50);
  await reader.read(j);
  t.true(j.into.equals(DATA.subarray(5, 50)));
});

test('a wrong range, a wrong length, a chunked 206 and bytes past the answer are refused, and the socket is not reused', async (t) => {
  const answers = [
    (r: Request) => r.socket.write(partial(r.range[0] + 1, r.range[1] + 1)),
    (r: Request) => r.socket.write(`HTTP/1.1 206 Partial Content\r\nContent-Range: bytes ${r.range[0]}-${r.range[1] - 1}/${DATA.length}\r\nContent-Length: 3\r\n\r\nabc`),
    (r: Request) => r.socket.write(`HTTP/1.1 206 Partial Content\r\nContent-Range: bytes ${r.range[0]}-${r.range[1] - 1}/${DATA.length}\r\nTransfer-Encoding: chunked\r\n\r\n`),
    (r: Request) => r.socket.write(Buffer.concat([partial(...r.range), Buffer.from('HTTP/1.1 200 OK\r\n\r\n')])),
  ];
  let n = 0;
  const srv = await server(t, (req) => {
    const answer = answers[n++];
    if (answer) answer(req);
    else req.socket.write(partial(...req.range));
  });
  const reader = new RangeReader(srv.url, 4, 5000);
  t.teardown(() => reader.close());
  for (const why of [/wrong range/, /length of 3/, /no length and a transfer encoding/]) {
    await t.throwsAsync(reader.read(job(0, 10)), { instanceOf: RemoteError, message: why });
  }
  await reader.read(job(0, 10)); // the answer itself is whole: the stray bytes come after it
  await new Promise((r) => setTimeout(r, 50));
  const j = job(20, 30);
  await reader.read(j);
  t.true(j.into.equals(DATA.subarray(20, 30)));
  t.is(new Set(srv.requests.map((r) => r.conn)).size, srv.requests.length, 'every refused answer (and the stray bytes) cost its connection');
});

test('a stall mid-body fails as a stall of the body; what came is counted, so a retry resumes after it', async (t) => {
  const srv = await server(t, (req) => {
    const bytes = partial(...req.range);
    req.socket.write(bytes.subarray(0, bytes.length - 40)); // and nothing more
  });
  const reader = new RangeReader(srv.url, 4, 200);
  t.teardown(() => reader.close());
  const j = job(0, 1000);
  const e = await t.throwsAsync(reader.read(j), { instanceOf: StallError });
  t.is(e?.phase, 'body');
  t.is(j.progress.bytes, 960);
  t.true(j.into.subarray(0, 960).equals(DATA.subarray(0, 960)));
});

test('an abort mid-body rejects with an AbortError at once and drops the connection', async (t) => {
  const srv = await server(t, (req) => {
    const bytes = partial(...req.range);
    req.socket.write(bytes.subarray(0, 100));
  });
  const reader = new RangeReader(srv.url, 4, 60_000);
  t.teardown(() => reader.close());
  const ac = new AbortController();
  const p = reader.read(job(0, 5000, { signal: ac.signal }));
  while (srv.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 20));
  ac.abort();
  const e = await t.throwsAsync(p);
  t.is(e?.name, 'AbortError');
  for (let i = 0; i < 100 && srv.sockets.size > 0; i++) await new Promise((r) => setTimeout(r, 5));
  t.is(srv.sockets.size, 0, 'the server saw the connection close');
});

test('dechunk: whole bodies and where they end, bodies still coming, extensions, trailers', (t) => {
  const whole = '3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n';
  t.deepEqual(dechunk(Buffer.from(whole)), { body: Buffer.from('abcde'), end: whole.length });
  t.deepEqual(dechunk(Buffer.from(`${whole}HTTP`)), { body: Buffer.from('abcde'), end: whole.length }, 'what follows is not the body');
  t.is(dechunk(Buffer.from('3\r\nab')), undefined);
  t.is(dechunk(Buffer.from('3\r\nabc\r\n')), undefined);
  t.is(dechunk(Buffer.from('3\r\nabc\r\n0\r\n')), undefined, 'the last empty line has not come');
  t.deepEqual(dechunk(Buffer.from('0\r\n\r\n')), { body: Buffer.alloc(0), end: 5 });
  t.deepEqual(dechunk(Buffer.from('1\r\nz\r\n0\r\nX-T: 1\r\n\r\n')), { body: Buffer.from('z'), end: 19 }, 'trailers');
});

test('a body into a sink: rooms of any size, given at once or later (the socket pauses), however the answer is cut; the connection is reused', async (t) => {
  const { srv, reader, cutAt } = await cutServer(t);
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: DATA.length - 1 }),
      fc.integer({ min: 1, max: DATA.length }),
      fc.array(fc.nat({ max: 300 }), { maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 70000 }), { minLength: 1, maxLength: 5 }),
      fc.array(fc.option(fc.nat({ max: 5 }), { nil: undefined }), { maxLength: 8 }),
      async (start, len, c, sizes, delays) => {
        const end = Math.min(DATA.length, start + len);
        cutAt(c);
        const into = sink(sizes, delays);
        const progress = { bytes: 0 };
        await reader.read({ ...job(start, end), into, progress });
        return progress.bytes === end - start && into.got().equals(DATA.subarray(start, end));
      },
    ),
    { numRuns: 80 },
  );
  t.is(new Set(srv.requests.map((r) => r.conn)).size, 1, 'one keep-alive connection for reads one after the other');
});

test('a sink that keeps the socket waiting longer than the stall timeout does not make a stall; the body then arrives whole', async (t) => {
  const srv = await server(t, (req) => void req.socket.write(partial(...req.range)));
  const reader = new RangeReader(srv.url, 4, 150);
  t.teardown(() => reader.close());
  const into = sink([1000, 65536], [undefined, 400, 400]);
  const progress = { bytes: 0 };
  await reader.read({ ...job(0, DATA.length), into, progress });
  t.true(into.got().equals(DATA));
  t.true(into.rooms >= 3, 'it waited twice for a room');
});

test('a sink whose room fails fails the read with its error and drops the connection', async (t) => {
  const srv = await server(t, (req) => void req.socket.write(partial(...req.range)));
  const reader = new RangeReader(srv.url, 4, 5000);
  t.teardown(() => reader.close());
  let n = 0;
  const into: BodySink = {
    room: () => (n++ === 0 ? Buffer.alloc(1000) : Promise.reject(new Error('no memory for you'))),
    wrote: () => undefined,
  };
  const progress = { bytes: 0 };
  await t.throwsAsync(reader.read({ ...job(0, DATA.length), into, progress }), { message: 'no memory for you' });
  t.is(progress.bytes, 1000);
  const j = job(5, 50);
  await reader.read(j);
  t.true(j.into.equals(DATA.subarray(5, 50)));
  t.is(new Set(srv.requests.map((r) => r.conn)).size, 2, 'the failed read did not give its connection back');
});
