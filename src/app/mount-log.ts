/**
 * The mount's log: one line per event, `<ISO time> <LEVEL> <text>`. DEBUG lines only with
 * --debug. To stdout in the foreground (systemd, containers), or to a file (a background
 * mount) that is private (0600), rotated when it passes a size (one old copy, `<file>.1`), and
 * reopened on SIGHUP (for logrotate). Writes are synchronous appends of one short line: a log
 * line is never lost to an exit right after it, and never interleaves with another.
 */
import { closeSync, fstatSync, openSync, renameSync, writeSync } from 'node:fs';

export type Level = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

export interface MountLog {
  debug(line: string): void;
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
  /** Reopens the file (after logrotate moved it); no-op on stdout. */
  reopen(): void;
  close(): void;
}

export function openMountLog(o: { file?: string; debug: boolean; maxBytes: number }): MountLog {
  let fd = o.file ? openSync(o.file, 'a', 0o600) : 1;
  let size = o.file ? fstatSync(fd).size : 0;
  const reopen = (): void => {
    if (!o.file) return;
    const old = fd;
    fd = openSync(o.file, 'a', 0o600);
    size = fstatSync(fd).size;
    closeSync(old);
  };
  const write = (level: Level, line: string): void => {
    if (level === 'DEBUG' && !o.debug) return;
    const text = `${new Date().toISOString()} ${level} ${line}\n`;
    const bytes = Buffer.byteLength(text);
    // The file's real size: another writer (a second process on the same log) counts too.
    if (o.file) size = fstatSync(fd).size;
    if (o.file && size > 0 && size + bytes > o.maxBytes) {
      try {
        renameSync(o.file, `${o.file}.1`);
      } catch {
        /* another process rotated it, or the folder went: reopen below says so if it fails */
      }
      reopen();
    }
    try {
      writeSync(fd, text);
      size += bytes;
    } catch {
      /* a full disk must not stop the mount */
    }
  };
  return {
    debug: (l) => write('DEBUG', l),
    info: (l) => write('INFO', l),
    warn: (l) => write('WARN', l),
    error: (l) => write('ERROR', l),
    reopen,
    close: () => {
      if (o.file) closeSync(fd);
    },
  };
}
