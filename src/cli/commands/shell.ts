/** `sreg shell`: an interactive Node REPL with a connected `client` (DropboxClient) and `db`. */
import repl from 'node:repl';
import type { CommandModule } from 'yargs';
import { UsageError } from '../../registry/errors.js';
import { run, type GlobalArgs } from '../run.js';

export const shellCommand: CommandModule<GlobalArgs, GlobalArgs & { name?: string }> = {
  command: 'shell [name]',
  describe: 'An interactive shell with a connected Dropbox client',
  builder: (y) => y.positional('name', { type: 'string', describe: 'the client: dropbox (or dropbox://)' }),
  handler: (a) =>
    run(a, async (s) => {
      if (a.name !== undefined && a.name.replace(/:\/\/$/, '') !== 'dropbox') {
        throw new UsageError(`'${a.name}' is not a client sreg has: sreg is the Dropbox client (use: dropbox)`);
      }
      const client = await s.client();
      s.out.info("client: the connected DropboxClient (try: await client.listAll('', true)); db: the local sregistry.db");
      const r = repl.start({ prompt: 'sreg> ', useGlobal: false });
      Object.assign(r.context, { client, db: s.db() });
      await new Promise<void>((resolve) => r.on('exit', () => resolve()));
    }),
};
