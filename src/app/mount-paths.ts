/** Where a mount's state and logs go (mount-state.ts), without loading SQLite: `sreg mount`'s parent needs the log's path before anything else. */
import path from 'node:path';
import type { Config } from '../config/index.js';

export const stateDirOf = (config: Config): string => path.join(config.cacheDir, 'sreg');

export function logFileFor(config: Config, mountpoint: string): string {
  const safe = mountpoint.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+/, '');
  return path.join(stateDirOf(config), 'logs', `mount-${safe || 'root'}.log`);
}
