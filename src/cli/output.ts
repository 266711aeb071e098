/**
 * What commands print. `info` lines (the `[client|dropbox]` banner, `[container][new] …`) are
 * hidden by --quiet; `result` lines (a URL, a path) always print; errors go to stderr as one
 * `ERROR …` line. Progress bars appear only on a terminal, never with --quiet or when piped.
 */
export interface Progress {
  add(bytes: number): void;
  done(): void;
}

export interface Output {
  readonly quiet: boolean;
  info(line: string): void;
  result(line: string): void;
  debug(line: string): void;
  warn(line: string): void;
  progress(totalBytes: number): Progress;
}

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

export function humanBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1000 && u < UNITS.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${UNITS[u]}`;
}

function duration(sec: number): string {
  if (!Number.isFinite(sec)) return '--';
  const s = Math.max(0, Math.round(sec));
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** The bar line: `Progress |=====     | 45.0% 12.3 MB/s 450.0 MB/1.0 GB ETA 3s`. */
export function renderBar(done: number, total: number, elapsedSec: number, width = 35): string {
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(frac * width);
  const rate = elapsedSec > 0 ? done / elapsedSec : 0;
  const eta = rate > 0 ? (total - done) / rate : Infinity;
  return `Progress |${'='.repeat(filled)}${' '.repeat(width - filled)}| ${(frac * 100).toFixed(1)}% ${humanBytes(rate)}/s ${humanBytes(done)}/${humanBytes(total)} ETA ${frac >= 1 ? '0s' : duration(eta)}`;
}

export function consoleOutput(opts: { quiet: boolean; debug: boolean; stream?: NodeJS.WriteStream }): Output {
  const stdout = opts.stream ?? process.stdout;
  const showBars = !opts.quiet && stdout.isTTY === true;
  return {
    quiet: opts.quiet,
    info: (line) => {
      if (!opts.quiet) stdout.write(`${line}\n`);
    },
    result: (line) => stdout.write(`${line}\n`),
    debug: (line) => {
      if (opts.debug) process.stderr.write(`DEBUG ${line}\n`);
    },
    warn: (line) => process.stderr.write(`WARNING ${line}\n`),
    progress(totalBytes) {
      if (!showBars) return { add: () => undefined, done: () => undefined };
      const start = performance.now();
      let done = 0;
      let lastDraw = 0;
      const draw = (): void => {
        stdout.write(`\r${renderBar(done, totalBytes, (performance.now() - start) / 1000)}\x1b[K`);
      };
      return {
        add(n) {
          done += n;
          const now = performance.now();
          if (now - lastDraw > 100) {
            lastDraw = now;
            draw();
          }
        },
        done() {
          done = Math.max(done, totalBytes);
          draw();
          stdout.write('\n');
        },
      };
    },
  };
}
