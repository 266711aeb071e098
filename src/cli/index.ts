#!/usr/bin/env node
/**
 * The `sreg` binary: yargs, one file per command. Commands parse, call below, print, and set
 * the exit code; nothing here knows Dropbox or SQLite.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { emulatorCommand } from './emulator.js';

await yargs(hideBin(process.argv))
  .scriptName('sreg')
  .usage('$0 <command> [options]')
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
