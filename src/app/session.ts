/**
 * The composition root of a CLI run: the frozen config, the output, and — built only when a
 * command needs them — the local database and the connected Dropbox client. Connecting prints
 * the banner the Python client prints (`[client|dropbox] [database|sqlite:///…]`, then
 * `connected to <name>`), unless --quiet.
 */
import { loadConfig, type Config } from '../config/index.js';
import { RegistryDb } from '../catalog/index.js';
import type { DropboxClient } from '../dropbox/client.js';
import type { Output } from '../cli/output.js';

export class Session {
  private dbHandle: RegistryDb | undefined;
  private clientHandle: DropboxClient | undefined;
  private bannerShown = false;

  constructor(
    readonly config: Config,
    readonly out: Output,
  ) {}

  static fromEnv(env: Record<string, string | undefined>, out: Output): Session {
    return new Session(loadConfig(env), out);
  }

  db(): RegistryDb {
    this.dbHandle ??= RegistryDb.open(this.config.databaseDir);
    return this.dbHandle;
  }

  banner(): void {
    if (this.bannerShown) return;
    this.bannerShown = true;
    this.out.info(`[client|dropbox] [database|${this.db().dbUri}]`);
  }

  /** The Dropbox client, connected (its account checked) on first use. */
  async client(): Promise<DropboxClient> {
    if (this.clientHandle) return this.clientHandle;
    this.banner();
    const c = this.config;
    // Loaded here: commands that never connect (status, unmount, a mount's parent) skip the client's modules.
    const { DropboxClient } = await import('../dropbox/client.js');
    const client = new DropboxClient({
      endpoint: c.endpoint,
      accessToken: c.accessToken,
      refreshToken: c.refreshToken,
      appKey: c.appKey,
      appSecret: c.appSecret,
      workers: c.threads,
      timeoutMs: c.timeoutMs,
      log: (line) => this.out.debug(line),
    });
    try {
      const account = await client.currentAccount();
      this.out.info(`connected to ${account.displayName}`);
    } catch (e) {
      client.close();
      throw e;
    }
    this.clientHandle = client;
    return client;
  }

  close(): void {
    this.clientHandle?.close();
    this.dbHandle?.close();
  }
}
