#!/usr/bin/env node
/**
 * The `sreg` binary: yargs, one file per command. Commands parse, call below, print, and set
 * the exit code; nothing here knows Dropbox or SQLite.
 *
 * Start-up: only the module of the command being run is loaded (`sreg mount` does not load the
 * emulator nor the registry commands; `sreg status` not the Dropbox SDK). The command is the
 * first argument that is neither an option nor an option's value; when it is not one of ours
 * (a typo, `--help`, nothing) every module is loaded, so help and "unknown command" are whole.
 * `sreg mount` with a plain command line skips yargs altogether (fast-mount.ts).
 */
import { createRequire } from 'node:module';
import type { CommandModule } from 'yargs';
import path from 'node:path';
import type { MountChild } from '../app/mount-child.js';
import { flagsAsEnv, loadConfig, OPTIONS } from '../config/index.js';
import { trace } from '../util/trace.js';
import { commandWord } from './command-word.js';
import { parseMountFast, type FastMountArgs } from './fast-mount.js';

type Commands = CommandModule<any, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Each command module, loaded on demand, and the commands it defines (in --help's order). */
const MODULES: { names: string[]; load: () => Promise<Commands> }[] = [
  {
    names: ['push', 'pull', 'search', 'images', 'inspect', 'get', 'share', 'rm', 'add'],
    load: async () => {
      const m = await import('./commands/registry.js');
      return [m.pushCommand, m.pullCommand, m.searchCommand, m.imagesCommand, m.inspectCommand, m.getCommand, m.shareCommand, m.rmCommand, m.addCommand];
    },
  },
  {
    names: ['mount', 'unmount', 'status'],
    load: async () => {
      const m = await import('./commands/mount.js');
      return [m.mountCommand, m.unmountCommand, m.statusCommand];
    },
  },
  { names: ['backend'], load: async () => [(await import('./commands/backend.js')).backendCommand] },
  { names: ['shell'], load: async () => [(await import('./commands/shell.js')).shellCommand] },
  { names: ['emulator'], load: async () => [(await import('./emulator.js')).emulatorCommand] },
];

const argv = process.argv.slice(2);
const fast = parseMountFast(argv);
if (fast) {
  const early = fast.foreground ? undefined : await spawnEarly(fast);
  const { runMount } = await import('./commands/mount-run.js');
  trace('cli: modules loaded');
  await runMount(fast, early);
} else {
  await viaYargs(argv);
}

async function viaYargs(argv: string[]): Promise<void> {
  // yargs's CommonJS build: one bundled file, where its ES module build is some thirty files
  // (about half the CPU time to load).
  const require = createRequire(import.meta.url);
  const yargs = require('yargs') as typeof import('yargs').default;

  const word = commandWord(argv);
  const wanted = MODULES.filter((m) => word !== undefined && m.names.includes(word));
  const commands = (await Promise.all((wanted.length ? wanted : MODULES).map((m) => m.load()))).flat();
  trace('cli: modules loaded');

  const cli = yargs(argv);
  // Settings of the config table that have a flag (the same value as their variable, stronger).
  for (const o of OPTIONS) {
    if ('flag' in o) cli.option(o.flag, { type: 'string', global: true, describe: `${o.help} [${o.env}]` });
  }
  cli
    .scriptName('sreg')
    .usage('$0 <command> [options]')
    .option('quiet', { type: 'boolean', default: false, global: true, describe: 'print only results (no banner, no progress)' })
    .option('debug', { type: 'boolean', default: false, global: true, describe: 'log retries and details to stderr' });
  for (const c of commands) cli.command(c as CommandModule);

  await cli
    .demandCommand(1, 'Say which command to run (sreg --help lists them).')
    .strict()
    .help()
    .version()
    .fail((msg, err) => {
      if (err) {
        console.error(`ERROR ${err.message}`);
        process.exit(1);
      }
      console.error(`ERROR ${msg}\nRun 'sreg --help' for usage.`);
      process.exit(2);
    })
    .parseAsync();
}

/**
 * A background mount's process, started before anything else is loaded: it loads its modules
 * while we load ours and run the checks, then waits for our `go` (app/mount-child.ts). Anything
 * unusual here (a setting that does not parse, a cache folder we cannot write) is left to the
 * ordinary path, which says what is wrong.
 */
async function spawnEarly(a: FastMountArgs): Promise<MountChild | undefined> {
  try {
    const { spawnMountChild } = await import('../app/mount-child.js');
    const env = { ...process.env, ...flagsAsEnv(a) };
    const config = loadConfig(env);
    const child = spawnMountChild(config, { mountpoint: path.resolve(a.dir), cacheSize: a['cache-size'], debug: a.debug, fuse: a.fuse }, env);
    trace('parent: spawned');
    return child;
  } catch {
    return undefined;
  }
}
