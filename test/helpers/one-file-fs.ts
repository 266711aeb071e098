/**
 * A FUSE file system of one file, `f` (read-only, the bytes of `file`), over the native addon
 * with a dispatch of its own: read-only opens are answered with `file` as their passthrough
 * backing file (the addon answers the ordinary way where the kernel does not take it), other
 * opens the ordinary way, and reads that reach the dispatch are served from `file`. Used by
 * test/e2e/passthrough.test.ts and, built, by scripts/lib/passthrough-probe.mjs: the benchmark
 * measures the dispatch the test checks.
 */
import { open, stat } from 'node:fs/promises';
import { NATIVE_MOUNT_OPTIONS } from '../../src/fuse3/index.js';
import { Op, type NativeAddon } from '../../src/fuse3/native.js';

export interface OneFileFs {
  /** Reads that reached the dispatch. */
  reads(): number;
  /** What each open's replyOpen returned (0 not answered, 1 ordinary, 2 passthrough), in order. */
  readonly opens: number[];
  /** The backing file read-only opens are given from now on. */
  backWith(file: string): void;
  /** Unmounts and closes the file. */
  close(): Promise<void>;
}

const FILE_INO = 2;
const ENOENT = 2;
const EIO = 5;
const ENOSYS = 38;
const KEEP_CACHE = 1;

/** Mounts the file system on `dir`; `passthrough`: take up FUSE passthrough if the kernel offers it. */
export async function mountOneFile(addon: NativeAddon, dir: string, file: string, passthrough: boolean): Promise<OneFileFs> {
  const size = (await stat(file)).size;
  const bytes = await open(file, 'r');
  let reads = 0;
  let backing = file;
  const opens: number[] = [];
  const attr = (ino: number): Float64Array =>
    ino === FILE_INO ? Float64Array.of(0o100444, 1, 0, 0, size, Math.ceil(size / 512), 4096, 0, 0, 0) : Float64Array.of(0o40755, 2, 0, 0, 0, 0, 4096, 0, 0, 0);
  const dispatch = (id: number, op: number, ino: number, _fh: number, a: number, b: number, _c: number, name?: string): void => {
    switch (op) {
      case Op.INIT:
      case Op.FORGET:
        return;
      case Op.LOOKUP:
        if (ino === 1 && name === 'f') addon.replyEntry(id, FILE_INO, attr(FILE_INO), 60, 60);
        else addon.replyErr(id, ENOENT);
        return;
      case Op.GETATTR:
        addon.replyAttr(id, ino, attr(ino), 60);
        return;
      case Op.OPEN: // keep_cache, as the mount gives a revision it has seen
        opens.push((a & 3) === 0 ? addon.replyOpen(id, 7, 0, KEEP_CACHE, backing) : addon.replyOpen(id, 7, 0, KEEP_CACHE));
        return;
      case Op.READ: {
        if (id === 0) return; // told of a read the addon served itself
        reads++;
        const buf = Buffer.allocUnsafe(a);
        bytes.read(buf, 0, a, b).then(({ bytesRead }) => addon.replyBuf(id, buf, bytesRead), () => addon.replyErr(id, EIO));
        return;
      }
      case Op.FLUSH:
      case Op.RELEASE:
      case Op.ACCESS:
        addon.replyOk(id);
        return;
      default:
        addon.replyErr(id, ENOSYS);
    }
  };
  try {
    addon.mount(dir, NATIVE_MOUNT_OPTIONS, false, dispatch, passthrough);
  } catch (e) {
    await bytes.close();
    throw e;
  }
  return {
    reads: () => reads,
    opens,
    backWith: (f) => (backing = f),
    close: async () => {
      await addon.unmount();
      await bytes.close();
    },
  };
}
