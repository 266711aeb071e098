/** `sreg backend activate|deactivate|status|ls|login`: the Python client's backend command, for Dropbox. */
import { createInterface } from 'node:readline/promises';
import type { CommandModule } from 'yargs';
import { readSecrets, type Config } from '../../config/index.js';
import { updateSecrets } from '../../config/secrets.js';
import { login } from '../../app/login.js';
import { UsageError } from '../../registry/errors.js';
import { run, type GlobalArgs } from '../run.js';
import type { Session } from '../../app/session.js';

function onlyDropbox(name: string | undefined): void {
  if (name !== undefined && name !== 'dropbox') throw new UsageError(`'${name}' is not a client sreg has: sreg is the Dropbox client (use: dropbox)`);
}

function credentialLines(c: Config): string[] {
  const src = (k: keyof Config): string => {
    const where = c.sources[k];
    return where === 'env' ? 'from the environment' : where === 'secrets' ? `from ${c.secretsFile}` : 'not set';
  };
  return [
    `dropbox token: ${src('accessToken')}`,
    `dropbox refresh token: ${src('refreshToken')}`,
    `dropbox endpoint: ${c.endpoint ?? 'Dropbox (api.dropboxapi.com)'}`,
  ];
}

async function backend(s: Session, action: string, name: string | undefined, appKey: string | undefined): Promise<void> {
  const file = s.config.secretsFile;
  switch (action) {
    case 'activate':
      onlyDropbox(name ?? 'dropbox');
      await updateSecrets(file, (x) => (x.SREGISTRY_CLIENT = 'dropbox'));
      s.out.result('[activate] dropbox');
      return;
    case 'deactivate': {
      const had = 'SREGISTRY_CLIENT' in readSecrets(file);
      if (had) await updateSecrets(file, (x) => delete x.SREGISTRY_CLIENT);
      s.out.result(had ? '[deactivated]' : 'There is no active client');
      return;
    }
    case 'status': {
      const secrets = readSecrets(file);
      s.out.result('[backend status]');
      s.out.result(`There are ${Object.keys(secrets).length} clients found in secrets.`);
      s.out.result(typeof secrets.SREGISTRY_CLIENT === 'string' ? `active: ${secrets.SREGISTRY_CLIENT}` : 'There is no active client.');
      for (const line of credentialLines(s.config)) s.out.info(line);
      return;
    }
    case 'ls': {
      const secrets = readSecrets(file);
      s.out.result(Object.keys(secrets).filter((k) => k !== 'SREGISTRY_CLIENT').join('\n'));
      return;
    }
    case 'login': {
      onlyDropbox(name ?? 'dropbox');
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        await login(s.config, appKey, { say: (l) => process.stderr.write(`${l}\n`), ask: (p) => rl.question(p) });
      } finally {
        rl.close();
      }
      s.out.result(`[login] dropbox: refresh token saved in ${file} (mode 0600)`);
      return;
    }
    default:
      throw new UsageError(`unknown backend action '${action}': use activate, deactivate, status, ls or login`);
  }
}

export const backendCommand: CommandModule<GlobalArgs, GlobalArgs & { action: string; name?: string; 'app-key'?: string }> = {
  command: 'backend <action> [name]',
  describe: 'activate | deactivate | status | ls | login dropbox',
  builder: (y) =>
    y
      .positional('action', { type: 'string', demandOption: true, choices: ['activate', 'deactivate', 'status', 'ls', 'login'] })
      .positional('name', { type: 'string', describe: 'the client: dropbox' })
      .option('app-key', { type: 'string', describe: 'login: the Dropbox app key (else SREGISTRY_DROPBOX_APP_KEY)' }),
  handler: (a) => run(a, (s) => backend(s, a.action, a.name, a['app-key'])),
};
