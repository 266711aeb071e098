/**
 * Python's `json.dumps` text, so that what `sreg` prints and stores reads like what the Python
 * client prints and stores: `ensure_ascii` (every character outside space..`~` as `\uXXXX`,
 * lowercase hex, surrogate pairs), separators `', '`/`': '` without indent and `','`/`': '` with
 * it, `{}`/`[]` for empty containers, and `sort_keys` by code point.
 *
 * Known difference: JavaScript has no int/float distinction, so a float that is whole (`1.0`)
 * prints as `1`, and exponents print as JavaScript writes them (`1e-7`, Python `1e-07`).
 */

export interface PyJsonOptions {
  /** Spaces per level; undefined for one line (Python's `indent=None`). */
  indent?: number;
  sortKeys?: boolean;
}

function compareCodePoints(a: string, b: string): number {
  const ca = Array.from(a);
  const cb = Array.from(b);
  const n = Math.min(ca.length, cb.length);
  for (let i = 0; i < n; i++) {
    const x = ca[i]?.codePointAt(0) ?? 0;
    const y = cb[i]?.codePointAt(0) ?? 0;
    if (x !== y) return x - y;
  }
  return ca.length - cb.length;
}

function dumpString(s: string): string {
  // JSON.stringify escapes `"`, `\`, C0 controls (short forms as Python) and lone surrogates;
  // Python's ensure_ascii also escapes DEL and everything above it.
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function dump(value: unknown, opts: PyJsonOptions, depth: number): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return dumpString(value);
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : value > 0 ? 'Infinity' : value < 0 ? '-Infinity' : 'NaN';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'object') return 'null';
  const withToJson = value as { toJSON?: () => unknown };
  if (typeof withToJson.toJSON === 'function') return dump(withToJson.toJSON(), opts, depth);

  let items: string[];
  let open: string;
  let close: string;
  if (Array.isArray(value)) {
    items = value.map((v: unknown) => dump(v, opts, depth + 1));
    [open, close] = ['[', ']'];
  } else {
    let entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    if (opts.sortKeys) entries = entries.sort(([a], [b]) => compareCodePoints(a, b));
    items = entries.map(([k, v]) => `${dumpString(k)}: ${dump(v, opts, depth + 1)}`);
    [open, close] = ['{', '}'];
  }
  if (items.length === 0) return open + close;
  if (opts.indent === undefined) return open + items.join(', ') + close;
  const inner = '\n' + ' '.repeat(opts.indent * (depth + 1));
  const outer = '\n' + ' '.repeat(opts.indent * depth);
  return open + inner + items.join(',' + inner) + outer + close;
}

/** `json.dumps(value, indent=…, sort_keys=…)` as CPython writes it. */
export function pythonJsonDumps(value: unknown, opts: PyJsonOptions = {}): string {
  return dump(value, opts, 0);
}
