/**
 * Which FUSE adapter a mount uses: `native` (native/ + src/fuse3: libfuse 3's low-level API,
 * cached reads served without JavaScript) or `fuse-native` (src/fuse: libfuse 2 through the
 * fuse-native package). Chosen at mount time by `--fuse`, else SREG_FUSE, else native when its
 * addon loads, with a log line saying why not when it does not. Asking for native where it
 * cannot load is an error, not a silent fallback. Each adapter is loaded lazily: nothing but
 * the mount path needs libfuse. SREG_SAFETY_TIMEOUT_MS shortens both adapters' safety timer
 * (fuse/reply.ts: a call not answered within it gets EIO; 10 minutes otherwise), for tests.
 */
import { setReadahead } from '../fuse/mountinfo.js';
import { LocalError } from '../dropbox/errors.js';
import { UsageError } from '../registry/errors.js';
import type { FuseLog } from '../fuse/reply.js';
import type { NativeVfs, BlockSource, NativeCounters } from '../fuse3/index.js';

export type AdapterName = 'native' | 'fuse-native';
export const ADAPTERS: readonly AdapterName[] = ['native', 'fuse-native'];

export interface MountedAdapter {
  unmount(): Promise<void>;
  /** The native adapter's read counters (fast path vs JavaScript). */
  counters?(): NativeCounters;
}

export interface FuseAdapter {
  name: AdapterName;
  /** `native (libfuse 3.14.0)` or `fuse-native (libfuse 2)`: what the log and `sreg status` show. */
  label: string;
  mount(mountpoint: string, vfs: NativeVfs, opts: { log: FuseLog; uid: number; gid: number; debug?: boolean; cache?: BlockSource }): Promise<MountedAdapter>;
  raiseReadahead(mountpoint: string, log: FuseLog): Promise<void>;
}

export function parseAdapter(value: string | undefined, from: string): AdapterName | undefined {
  if (value === undefined || value === '') return undefined;
  if ((ADAPTERS as readonly string[]).includes(value)) return value as AdapterName;
  throw new UsageError(`${from}: '${value}' is not a FUSE adapter (native or fuse-native)`);
}

/** SREG_SAFETY_TIMEOUT_MS, if set: milliseconds before the safety timer answers a FUSE call EIO. */
export function safetyTimeoutMs(env: NodeJS.ProcessEnv = process.env): { safetyTimeoutMs?: number } {
  const v = env.SREG_SAFETY_TIMEOUT_MS;
  if (v === undefined || v === '') return {};
  const ms = Number(v);
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new UsageError(`SREG_SAFETY_TIMEOUT_MS: '${v}' is not a whole number of milliseconds above 0`);
  return { safetyTimeoutMs: ms };
}

/** The kernel's readahead for the native mount: 1 MiB reads, several in flight. */
export const NATIVE_READAHEAD_KB = 4096;

async function nativeAdapter(): Promise<FuseAdapter | string> {
  const f3 = await import('../fuse3/index.js');
  const { addon, why } = f3.loadNative();
  if (!addon) return why ?? 'the native addon does not load';
  return {
    name: 'native',
    label: `native (libfuse ${addon.version()})`,
    mount: (mountpoint, vfs, o) => f3.mountNative(mountpoint, vfs, { log: o.log, debug: o.debug, cache: o.cache, ...safetyTimeoutMs() }),
    raiseReadahead: (mountpoint, log) => setReadahead(mountpoint, NATIVE_READAHEAD_KB, log),
  };
}

async function fuseNativeAdapter(): Promise<FuseAdapter> {
  const f = await import('../fuse/index.js');
  return {
    name: 'fuse-native',
    label: 'fuse-native (libfuse 2)',
    mount: (mountpoint, vfs, o) => f.mountFuse(mountpoint, vfs, { log: o.log, uid: o.uid, gid: o.gid, debug: o.debug, ...safetyTimeoutMs() }),
    raiseReadahead: (mountpoint, log) => f.raiseReadahead(mountpoint, log),
  };
}

/**
 * The adapter to mount with. `wanted` is --fuse (or SREG_FUSE); `log` hears why native was
 * not used when it was not asked for. Throws `missing` (exit code ENOFUSE) when none loads.
 */
export async function chooseAdapter(wanted: AdapterName | undefined, log: FuseLog, missing: (e: unknown) => Error): Promise<FuseAdapter> {
  wanted ??= parseAdapter(process.env.SREG_FUSE, 'SREG_FUSE');
  if (wanted !== 'fuse-native') {
    const native = await nativeAdapter().catch((e: Error) => `the native adapter does not load: ${e.message}`);
    if (typeof native !== 'string') return native;
    if (wanted === 'native') throw new LocalError(`--fuse native: ${native}`, 'ENOFUSE');
    log(`FUSE adapter: native unavailable (${native}): using fuse-native (libfuse 2)`);
  }
  try {
    return await fuseNativeAdapter();
  } catch (e) {
    throw missing(e);
  }
}
