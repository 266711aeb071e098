/**
 * One table from error classes to what a person sees: a one-line `ERROR …` that says what
 * to do, and an exit code a script can test. Unknown errors print their message (and the
 * stack with --debug) and exit 1.
 */
import { ConfigError } from '../config/index.js';
import { LocalError, RemoteError } from '../dropbox/errors.js';
import { NameError } from '../registry/index.js';
import { UsageError } from '../registry/errors.js';

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  auth: 4,
  remote: 5,
  exists: 6,
  local: 7,
} as const;

export function describe(e: unknown): { message: string; exitCode: number } {
  if (e instanceof UsageError) return { message: e.message, exitCode: e.exitCode };
  if (e instanceof NameError || e instanceof ConfigError) return { message: e.message, exitCode: EXIT.usage };
  if (e instanceof LocalError) return { message: e.message, exitCode: EXIT.local };
  if (e instanceof RemoteError) {
    switch (e.code) {
      case 'auth':
      case 'auth_expired':
        return {
          message: /SREGISTRY_DROPBOX|backend login/.test(e.message)
            ? e.message
            : `${e.message}: set SREGISTRY_DROPBOX_TOKEN to a valid token, or run \`sreg backend login dropbox\``,
          exitCode: EXIT.auth,
        };
      case 'not_found':
        return { message: e.message, exitCode: EXIT.notFound };
      case 'conflict':
        return { message: e.message, exitCode: EXIT.exists };
      case 'network':
        return { message: `${e.message}: check your network (or SREGISTRY_DROPBOX_ENDPOINT) and try again`, exitCode: EXIT.remote };
      case 'rate_limited':
        return { message: `${e.message}; Dropbox kept asking us to slow down: try again in a few minutes`, exitCode: EXIT.remote };
      case 'server':
        return { message: `${e.message}; Dropbox kept failing: try again later`, exitCode: EXIT.remote };
      case 'insufficient_space':
        return { message: `${e.message}: free some space in your Dropbox`, exitCode: EXIT.remote };
      default:
        return { message: e.message, exitCode: EXIT.remote };
    }
  }
  return { message: (e as Error)?.message ?? String(e), exitCode: EXIT.failure };
}
