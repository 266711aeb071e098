/** cli/index.ts loads only the module of the command run: which one commandWord() finds. */
import test from 'ava';
import { commandWord } from '../../src/cli/command-word.js';

test('the first word that is neither an option nor a global option\'s value', (t) => {
  t.is(commandWord(['mount', '/x', '--foreground']), 'mount');
  t.is(commandWord(['--quiet', 'status']), 'status');
  t.is(commandWord(['--dropbox-timeout', '5', 'pull', 'a/b:c']), 'pull', 'the value of a global option is skipped');
  t.is(commandWord(['--dropbox-timeout=5', 'push', 'f.sif']), 'push');
  t.is(commandWord(['--', 'search']), 'search');
  t.is(commandWord(['--help']), undefined, 'no command: every module is loaded');
  t.is(commandWord([]), undefined);
  t.is(commandWord(['bogus']), 'bogus', 'not one of ours: every module is loaded, yargs says it is unknown');
});
