#!/usr/bin/env node
/**
 * The `sreg` binary: yargs, one file per command. Commands parse, call below, print, and set
 * the exit code; nothing here knows Dropbox or SQLite.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { OPTIONS } from '../config/index.js';
import { trace } from '../util/trace.js';
import { emulatorCommand } from './emulator.js';
import { backendCommand } from './commands/backend.js';
import { shellCommand } from './commands/shell.js';
import { mountCommand, statusCommand, unmountCommand } from './commands/mount.js';
import {
  addCommand,
  getCommand,
  imagesCommand,
  inspectCommand,
  pullCommand,
  pushCommand,
  rmCommand,
  searchCommand,
  shareCommand,
} from './commands/registry.js';

trace('cli: modules loaded');
const cli = yargs(hideBin(process.argv));
// Settings of the config table that have a flag (the same value as their variable, stronger).
for (const o of OPTIONS) {
  if ('flag' in o) cli.option(o.flag, { type: 'string', global: true, describe: `${o.help} [${o.env}]` });
}

await cli
  .scriptName('sreg')
  .usage('$0 <command> [options]')
  .option('quiet', { type: 'boolean', default: false, global: true, describe: 'print only results (no banner, no progress)' })
  .option('debug', { type: 'boolean', default: false, global: true, describe: 'log retries and details to stderr' })
  .command(pushCommand)
  .command(pullCommand)
  .command(searchCommand)
  .command(imagesCommand)
  .command(inspectCommand)
  .command(getCommand)
  .command(shareCommand)
  .command(rmCommand)
  .command(addCommand)
  .command(mountCommand)
  .command(unmountCommand)
  .command(statusCommand)
  .command(backendCommand)
  .command(shellCommand)
  .command(emulatorCommand)
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
