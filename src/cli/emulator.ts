/** `sreg emulator`: runs the local Dropbox API server until SIGTERM/SIGINT. */
import type { CommandModule } from 'yargs';
import { parseBytes, startEmulator } from '../emulator/index.js';

interface Args {
  root: string;
  port: number;
  host: string;
  token?: string;
  'latency-ms': number;
  bandwidth?: string;
  'token-ttl'?: number;
  'app-key': string;
  'app-secret'?: string;
  'refresh-token'?: string;
  'display-name': string;
  quota: string;
  'check-results': boolean;
  'tls-cert'?: string;
  'tls-key'?: string;
  'tls-port': number;
}

export const emulatorCommand: CommandModule<object, Args> = {
  command: 'emulator',
  describe: 'Run a strict local Dropbox API server (for tests, benchmarks and trying sreg)',
  builder: (y) =>
    y
      .option('root', { type: 'string', demandOption: true, describe: 'Folder for its files and database' })
      .option('port', { type: 'number', default: 8765, describe: 'TCP port (0 picks a free one)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'Address to listen on' })
      .option('token', { type: 'string', describe: 'Access token to accept (prefer SREG_EMULATOR_TOKEN: argv is visible to other users)' })
      .option('latency-ms', { type: 'number', default: 0, describe: 'Delay added before each response' })
      .option('bandwidth', { type: 'string', describe: 'Bytes per second per connection (40M = 40·10^6, 40Mi = 40·2^20)' })
      .option('token-ttl', { type: 'number', describe: 'Seconds until access tokens expire' })
      .option('app-key', { type: 'string', default: 'sreg-emulator', describe: 'OAuth app key' })
      .option('app-secret', { type: 'string', describe: 'OAuth app secret (none: a PKCE app)' })
      .option('refresh-token', { type: 'string', describe: 'A refresh token to accept (prefer SREG_EMULATOR_REFRESH_TOKEN)' })
      .option('display-name', { type: 'string', default: 'Sreg Emulator', describe: "The account's display name" })
      .option('quota', { type: 'string', default: '2T', describe: "The account's space allocation" })
      .option('check-results', { type: 'boolean', default: false, describe: 'Check every result against the API specification before sending it (also SREG_EMULATOR_CHECK_RESULTS=1)' })
      .option('tls-cert', { type: 'string', describe: 'PEM certificate: also serve HTTPS (for clients that speak only HTTPS)' })
      .option('tls-key', { type: 'string', describe: 'PEM private key of --tls-cert' })
      .option('tls-port', { type: 'number', default: 0, describe: 'HTTPS port (0 picks a free one)' })
      .check((a) => {
        if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) throw new Error(`--port must be 0–65535, got ${a.port}`);
        if (a['latency-ms'] < 0) throw new Error('--latency-ms must be ≥ 0');
        if (a['token-ttl'] !== undefined && !(a['token-ttl'] > 0)) throw new Error('--token-ttl must be > 0 seconds');
        if ((a['tls-cert'] === undefined) !== (a['tls-key'] === undefined)) throw new Error('--tls-cert and --tls-key go together');
        return true;
      }),
  handler: async (a) => {
    const emu = await startEmulator({
      root: a.root,
      host: a.host,
      port: a.port,
      token: a.token ?? process.env.SREG_EMULATOR_TOKEN,
      latencyMs: a['latency-ms'],
      bandwidthBytesPerSec: a.bandwidth ? parseBytes(a.bandwidth) : 0,
      tokenTtlSec: a['token-ttl'],
      appKey: a['app-key'],
      appSecret: a['app-secret'] ?? process.env.SREG_EMULATOR_APP_SECRET,
      refreshToken: a['refresh-token'] ?? process.env.SREG_EMULATOR_REFRESH_TOKEN,
      displayName: a['display-name'],
      quotaBytes: parseBytes(a.quota),
      checkResults: a['check-results'] || process.env.SREG_EMULATOR_CHECK_RESULTS === '1',
      tls: a['tls-cert'] && a['tls-key'] ? { certFile: a['tls-cert'], keyFile: a['tls-key'], port: a['tls-port'] } : undefined,
    });
    if (emu.tokenGenerated) console.error(`token: written to ${a.root}/token (mode 0600)`);
    if (emu.tlsUrl) console.log(`listening on ${emu.tlsUrl} (TLS)`);
    console.log(`listening on ${emu.url}`);
    const stop = (signal: string): void => {
      console.error(`[emulator] ${signal}: stopping`);
      emu.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    await new Promise(() => undefined);
  },
};
