/**
 * Where a mount keeps its things, all under the cache folder's private `sreg/` (0700): the
 * state database (catalog/mount-state.ts), the logs, the spool and the block cache. Opening
 * the state checks the cache folder first and says so in one line when it cannot be written.
 */
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { DB_FILE_NAME, MountRegistry, MountStateDb, RegistryDb, privateDir } from '../catalog/index.js';
import type { Config } from '../config/index.js';
import { LocalError } from '../dropbox/errors.js';

import { stateDirOf } from './mount-paths.js';

export { logFileFor, stateDirOf } from './mount-paths.js';

/** The cache folder's `sreg/` exists, is 0700 and writable; else one clear error (exit 7). */
export function checkCacheFolder(config: Config): void {
  const dir = stateDirOf(config);
  try {
    mkdirSync(config.cacheDir, { recursive: true });
    privateDir(dir);
    accessSync(dir, constants.W_OK);
  } catch (err) {
    let e = err;
    // mkdir -p on a read-only file system says ENOENT: ask the nearest folder that exists.
    if ((e as { code?: string }).code === 'ENOENT') {
      let up = config.cacheDir;
      while (!existsSync(up) && path.dirname(up) !== up) up = path.dirname(up);
      try {
        accessSync(up, constants.W_OK);
      } catch (e2) {
        e = e2;
      }
    }
    const code = (e as { code?: string }).code;
    const why =
      code === 'EROFS' ? 'is read-only'
      : code === 'EACCES' || code === 'EPERM' ? 'is not writable by you'
      : code === 'ENOSPC' ? 'is on a full disk'
      : `cannot be used (${(e as Error).message})`;
    throw new LocalError(`cache folder ${config.cacheDir} ${why}: set SINGULARITY_CACHEDIR to a writable local folder`, code, { cause: e });
  }
}

export interface MountState {
  db: MountStateDb;
  mounts: MountRegistry;
  close(): void;
}

/** Opens the mount state database (adopting what an older sreg left in sregistry.db). */
export function openMountState(config: Config): MountState {
  checkCacheFolder(config);
  // Migrating sregistry.db first moves an older sreg's mount tables aside for adoption.
  RegistryDb.open(config.databaseDir).close();
  const db = MountStateDb.open(stateDirOf(config), path.join(config.databaseDir, DB_FILE_NAME));
  // The registry on the NORMAL connection: its row is written on the way to the mount's first
  // answer, where a FULL commit's fsync cost 6-23 ms of the event loop (bench-startup profiles).
  return { db, mounts: new MountRegistry(db.fast), close: () => db.close() };
}
