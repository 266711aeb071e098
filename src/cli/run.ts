/**
 * Runs one command: builds the session from the environment, calls the command, closes
 * everything, and turns any failure into one `ERROR …` line and an exit code (errors.ts).
 */
import { Session } from '../app/session.js';
import { flagsAsEnv } from '../config/index.js';
import { describe } from './errors.js';
import { consoleOutput } from './output.js';

export interface GlobalArgs {
  quiet?: boolean;
  debug?: boolean;
  /** Machine-readable output: nothing but the JSON on stdout (no banner). */
  json?: boolean;
}

export async function run(args: GlobalArgs, fn: (s: Session) => unknown): Promise<void> {
  const out = consoleOutput({ quiet: (args.quiet ?? false) || (args.json ?? false), debug: args.debug ?? false });
  let session: Session | undefined;
  try {
    // Flags of the config table stand for their variables, here and in a mount's daemon.
    Object.assign(process.env, flagsAsEnv(args as Record<string, unknown>));
    session = Session.fromEnv(process.env, out);
    await fn(session);
  } catch (e) {
    const { message, exitCode } = describe(e);
    process.stderr.write(`ERROR ${message}\n`);
    if (args.debug && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    process.exitCode = exitCode;
  } finally {
    session?.close();
  }
}
