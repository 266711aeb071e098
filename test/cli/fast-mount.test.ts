/**
 * `sreg mount` skips yargs for a plain command line (cli/fast-mount.ts): what it accepts must
 * mean what yargs makes of it, and anything else must be left to yargs.
 */
import { createRequire } from 'node:module';
import test from 'ava';
import type { CommandModule } from 'yargs';
import { mountCommand } from '../../src/cli/commands/mount.js';
import { parseMountFast } from '../../src/cli/fast-mount.js';
import { OPTIONS } from '../../src/config/index.js';

const require = createRequire(import.meta.url);
const yargs = require('yargs') as typeof import('yargs').default;

/** yargs's reading of the line, with the CLI's global options and the real mount command (its handler not run). */
function viaYargs(argv: string[]): Record<string, unknown> {
  let seen: Record<string, unknown> = {};
  const cli = yargs(argv);
  for (const o of OPTIONS) if ('flag' in o) cli.option(o.flag, { type: 'string', global: true });
  cli.option('quiet', { type: 'boolean', default: false, global: true }).option('debug', { type: 'boolean', default: false, global: true });
  cli.command({ ...(mountCommand as CommandModule), handler: (a) => void (seen = a) });
  cli.strict().fail((msg) => {
    throw new Error(msg);
  }).parseSync();
  return seen;
}

const KEYS = ['dir', 'foreground', 'quiet', 'debug', 'cache-size', 'fuse', 'log-file', 'dropbox-timeout', 'read-deadline'];
const pick = (a: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(KEYS.filter((k) => a[k] !== undefined).map((k) => [k, a[k]]));

const ACCEPTED = [
  ['mount', '/m'],
  ['--quiet', 'mount', '/m'],
  ['mount', 'rel/dir', '--foreground', '--log-file', '/l/x.log', '--cache-size', '4294967296', '--fuse', 'native', '--debug'],
  ['--dropbox-timeout', '5', 'mount', '--cache-size=4Gi', '/m', '--read-deadline=30', '--quiet'],
  ['mount', '--fuse=fuse-native', '/m', '--foreground'],
];

test('a plain mount line means what yargs makes of it', (t) => {
  for (const argv of ACCEPTED) {
    const fast = parseMountFast(argv);
    t.truthy(fast, argv.join(' '));
    t.deepEqual(pick(fast as Record<string, unknown>), pick(viaYargs(argv)), argv.join(' '));
  }
});

test('anything else is left to yargs', (t) => {
  const LEFT = [
    [],
    ['status'],
    ['--help'],
    ['mount'],
    ['mount', '--help'],
    ['mount', '/m', '--version'],
    ['mount', '/a', '/b'],
    ['mount', '/m', '--bogus'],
    ['mount', '/m', '--cacheSize', '1G'],
    ['mount', '/m', '--cache-size'],
    ['mount', '/m', '--cache-size', '--debug'],
    ['mount', '/m', '--cache-size', '1G', '--cache-size', '2G'],
    ['mount', '/m', '--no-foreground'],
    ['mount', '/m', '--foreground=false'],
    ['mount', '--foreground', 'true', '/m'],
    ['mount', '/m', '-q'],
    ['mount', '--', '/m'],
    ['--foreground', 'mount', '/m'],
    ['unmount', '/m'],
  ];
  for (const argv of LEFT) t.is(parseMountFast(argv), undefined, argv.join(' '));
});
