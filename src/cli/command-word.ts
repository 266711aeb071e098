/** Which command a `sreg` command line runs, before yargs parses it (cli/index.ts loads only its module). */
import { OPTIONS } from '../config/index.js';

/** The command word of argv: the first argument that is not an option or a global option's value. */
export function commandWord(args: readonly string[]): string | undefined {
  const valued = new Set(OPTIONS.flatMap((o) => ('flag' in o && o.flag ? [`--${o.flag}`] : [])));
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') return args[i + 1];
    if (!a.startsWith('-')) return a;
    if (valued.has(a)) i++; // `--flag value` (`--flag=value` is one argument)
  }
  return undefined;
}

