/**
 * The last revisions of ours that landed at each path (newest last). The change feed can still
 * deliver an older one of ours after a newer one landed (a list_folder/continue answered before
 * the upload, applied after it): the catalog showing any of them means "ours", and the newest
 * is what a reader gets and a new writer derives from (no conflict with ourselves).
 * Bounded: the paths uploaded least recently are forgotten first (their echoes are long in).
 * Concurrency: one JS thread; every method is synchronous and O(1) (32 revisions per path).
 */
import type { EntryInfo } from './ports.js';

const PATHS = 10_000;
const REVS_PER_PATH = 32;

export class LandedRevs {
  private readonly byPath = new Map<string, { revs: string[]; last: EntryInfo }>();

  record(pathLower: string, entry: EntryInfo): void {
    const l = this.byPath.get(pathLower);
    this.byPath.delete(pathLower);
    this.byPath.set(pathLower, { revs: [...(l?.revs.slice(1 - REVS_PER_PATH) ?? []), entry.rev ?? ''], last: entry });
    if (this.byPath.size > PATHS) this.byPath.delete(this.byPath.keys().next().value!);
  }

  /** The catalog's entry `e` of a path, or our newest one if `e` is an older revision of ours. */
  through(pathLower: string, e: EntryInfo | undefined): EntryInfo | undefined {
    const l = this.byPath.get(pathLower);
    if (!l || e?.rev === undefined) return e;
    return l.revs.includes(e.rev) ? l.last : e;
  }
}
