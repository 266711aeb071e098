/**
 * The registry of running mounts (`sreg_mounts` in the mount state database): which process
 * serves which folder, when that process started (so a reused pid is not taken for it), its
 * log and its control socket; and the totals of the upload journal that `sreg status` and
 * `sreg unmount` report when no mount runs.
 */
import type { Database, Statement } from 'better-sqlite3';

export interface MountRecord {
  mountpoint: string;
  pid: number;
  /** /proc/PID/stat start time of the serving process; null for a row an older sreg wrote. */
  pidStart: string | null;
  logFile: string;
  controlSocket: string;
  startedAtMs: number;
}

interface Row {
  mountpoint: string;
  pid: number;
  pid_start: string | null;
  log_file: string;
  control_socket: string;
  started_at_ms: number;
}

const toRecord = (r: Row): MountRecord => ({
  mountpoint: r.mountpoint,
  pid: r.pid,
  pidStart: r.pid_start,
  logFile: r.log_file,
  controlSocket: r.control_socket,
  startedAtMs: r.started_at_ms,
});

const COLS = 'mountpoint, pid, pid_start, log_file, control_socket, started_at_ms';

export class MountRegistry {
  private readonly st: {
    all: Statement<[], Row>;
    get: Statement<[string], Row>;
    put: Statement<[string, number, string | null, string, string, number]>;
    del: Statement<[string]>;
    delIfPid: Statement<[string, number]>;
    pending: Statement<[], { n: number; bytes: number }>;
  };

  constructor(db: Database) {
    this.st = {
      all: db.prepare(`SELECT ${COLS} FROM sreg_mounts ORDER BY mountpoint`),
      get: db.prepare(`SELECT ${COLS} FROM sreg_mounts WHERE mountpoint = ?`),
      put: db.prepare(`INSERT OR REPLACE INTO sreg_mounts (${COLS}) VALUES (?, ?, ?, ?, ?, ?)`),
      del: db.prepare('DELETE FROM sreg_mounts WHERE mountpoint = ?'),
      delIfPid: db.prepare('DELETE FROM sreg_mounts WHERE mountpoint = ? AND pid = ?'),
      pending: db.prepare('SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM sreg_uploads'),
    };
  }

  list(): MountRecord[] {
    return this.st.all.all().map(toRecord);
  }

  get(mountpoint: string): MountRecord | undefined {
    const r = this.st.get.get(mountpoint);
    return r && toRecord(r);
  }

  put(m: MountRecord): void {
    this.st.put.run(m.mountpoint, m.pid, m.pidStart, m.logFile, m.controlSocket, m.startedAtMs);
  }

  /** Removes the row; with `pid`, only if that process still owns it. */
  remove(mountpoint: string, pid?: number): void {
    if (pid === undefined) this.st.del.run(mountpoint);
    else this.st.delIfPid.run(mountpoint, pid);
  }

  /** Files closed on a mount and not yet in Dropbox (the upload journal). */
  pendingUploads(): { files: number; bytes: number } {
    const r = this.st.pending.get() ?? { n: 0, bytes: 0 };
    return { files: r.n, bytes: r.bytes };
  }
}
