/**
 * A child process that holds the model test's file descriptors on the mount and makes the
 * calls on them (open, read, write, ftruncate, fsync, close), one JSON line per request.
 *
 * Why a process of its own: the test process starts others (stat, fusermount, sreg), and a
 * fork duplicates every descriptor it holds, even close-on-exec ones, closing them again at
 * exec: each such close is a FUSE FLUSH, which the mount rightly takes as a close(2) (the
 * bytes are committed and uploaded). This process never forks, so only the calls the sequence
 * makes reach the mount.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const SCRIPT = `
const fs = require('node:fs');
const { O_RDWR, O_CREAT, O_TRUNC, O_RDONLY } = fs.constants;
const run = {
  openW: (p, trunc) => fs.openSync(p, O_RDWR | O_CREAT | (trunc ? O_TRUNC : 0), 0o644),
  openR: (p) => {
    const fd = fs.openSync(p, O_RDONLY);
    // open(2) of a folder for reading succeeds (opendir); opening a file there is EISDIR.
    if (fs.fstatSync(fd).isDirectory()) { fs.closeSync(fd); throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' }); }
    return fd;
  },
  write: (fd, off, b64) => { const b = Buffer.from(b64, 'base64'); return fs.writeSync(fd, b, 0, b.length, off); },
  read: (fd, off, len) => { const b = Buffer.alloc(len); const n = fs.readSync(fd, b, 0, len, off); return b.subarray(0, n).toString('base64'); },
  ftruncate: (fd, size) => fs.ftruncateSync(fd, size),
  fsync: (fd) => fs.fsyncSync(fd),
  close: (fd) => fs.closeSync(fd),
};
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  for (let nl; (nl = buf.indexOf('\\n')) >= 0; ) {
    const { id, op, args } = JSON.parse(buf.slice(0, nl));
    buf = buf.slice(nl + 1);
    let reply;
    try { reply = { id, value: run[op](...args) ?? null }; } catch (e) { reply = { id, code: e.code || String(e.message) }; }
    process.stdout.write(JSON.stringify(reply) + '\\n');
  }
});
`;

export class FdHolder {
  private child: ChildProcess | undefined;
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private start(): ChildProcess {
    const c = spawn(process.execPath, ['-e', SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
    let buf = '';
    c.stdout.setEncoding('utf8');
    c.stdout.on('data', (d: string) => {
      buf += d;
      for (let nl; (nl = buf.indexOf('\n')) >= 0; ) {
        const r = JSON.parse(buf.slice(0, nl)) as { id: number; value?: unknown; code?: string };
        buf = buf.slice(nl + 1);
        const w = this.waiting.get(r.id);
        this.waiting.delete(r.id);
        if (r.code !== undefined) w?.reject(Object.assign(new Error(r.code), { code: r.code }));
        else w?.resolve(r.value);
      }
    });
    c.once('exit', (code, sig) => {
      for (const w of this.waiting.values()) w.reject(new Error(`the descriptor holder exited (${code ?? sig})`));
      this.waiting.clear();
      if (this.child === c) this.child = undefined;
    });
    this.child = c;
    return c;
  }

  call<T>(op: string, ...args: unknown[]): Promise<T> {
    const c = this.child ?? this.start();
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      c.stdin!.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }

  /** Ends the process: the kernel closes every descriptor it held. */
  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }
}
