/**
 * `sreg mount` without yargs: the one command whose start-up time is an aim (issue 10), run by
 * two processes in a row (the `sreg mount DIR` parent, then the mount it spawns). yargs and its
 * help machinery cost about 50 ms of CPU to load, each time. A command line of the plain shapes
 * below is read here; anything else (--help, an unknown or repeated option, `--no-…`, `--`, a
 * value that looks like an option, a second folder) returns undefined and goes to yargs as
 * before, so help, errors and every yargs nicety stay whole.
 *
 *   [--quiet] [--debug] [--<flag of the config table> V]  mount DIR  [--foreground] [--quiet]
 *     [--debug] [--cache-size S] [--fuse A] [--log-file F] [--<flag of the config table> V]
 *   (`--opt V` or `--opt=V`; after the word `mount`, in any order)
 */
import { OPTIONS } from '../config/index.js';

export interface FastMountArgs {
  dir: string;
  foreground: boolean;
  quiet: boolean;
  debug: boolean;
  'cache-size': string;
  fuse?: string;
  'log-file'?: string;
  /** The config table's flags (dropbox-timeout, read-deadline) given on the command line. */
  [flag: string]: string | boolean | undefined;
}

const BOOLEANS = new Set(['foreground', 'quiet', 'debug']);
const VALUED = new Set(['cache-size', 'fuse', 'log-file', ...OPTIONS.flatMap((o) => ('flag' in o && o.flag ? [o.flag] : []))]);
/** What may come before the word `mount` (yargs's global options). */
const GLOBAL = new Set(['quiet', 'debug', ...OPTIONS.flatMap((o) => ('flag' in o && o.flag ? [o.flag] : []))]);

export function parseMountFast(argv: readonly string[]): FastMountArgs | undefined {
  const seen = new Map<string, string | boolean>();
  let command: string | undefined;
  let dir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith('-')) {
      if (command === undefined) {
        if (a !== 'mount') return undefined;
        command = a;
        continue;
      }
      // yargs reads `--foreground true` as the flag's value: such a line is left to it.
      if (dir !== undefined || a === '' || a === 'true' || a === 'false') return undefined;
      dir = a;
      continue;
    }
    if (!a.startsWith('--')) return undefined;
    const eq = a.indexOf('=');
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    if (seen.has(name) || (command === undefined && !GLOBAL.has(name))) return undefined;
    if (BOOLEANS.has(name)) {
      if (eq >= 0) return undefined;
      seen.set(name, true);
    } else if (VALUED.has(name)) {
      const value = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined || value === '' || value.startsWith('-')) return undefined;
      seen.set(name, value);
    } else {
      return undefined;
    }
  }
  if (dir === undefined) return undefined;
  const args: FastMountArgs = { dir, foreground: false, quiet: false, debug: false, 'cache-size': '10Gi' };
  for (const [k, v] of seen) args[k] = v;
  return args;
}
