/**
 * Configuration: one table of options → a frozen, validated Config. Sources, strongest first:
 * the environment, then the secrets file (`SREGISTRY_CLIENT_SECRETS`, default ~/.sregistry,
 * the Python client's format: `{"SREGISTRY_CLIENT": "dropbox", "dropbox": {"SREGISTRY_DROPBOX_TOKEN": …}}`),
 * then defaults. Nothing below `app/` reads `process.env`. A value read from the environment is
 * never written to the secrets file.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseBytes } from '../util/bytes.js';

export class ConfigError extends Error {
  readonly code = 'config';
}

export interface Config {
  readonly endpoint: string | undefined;
  readonly accessToken: string | undefined;
  readonly refreshToken: string | undefined;
  readonly appKey: string | undefined;
  readonly appSecret: string | undefined;
  readonly secretsFile: string;
  readonly databaseDir: string;
  readonly storageDir: string;
  readonly threads: number;
  readonly cacheDir: string;
  readonly disableCache: boolean;
  /** A mount's log is rotated (one old copy, `.1`) when it passes this size. */
  readonly logMaxBytes: number;
  /** Block files written with O_DIRECT where the filesystem takes it (src/cache/direct.ts). */
  readonly cacheDirectWrites: boolean;
  /** $XDG_RUNTIME_DIR (the user's private runtime folder), where the control socket goes when set. */
  readonly runtimeDir: string | undefined;
  /** The extension of a new image in Dropbox: `.simg` (the seed's) or `.sif` (sregistry 0.2.39's). */
  readonly imageExtension: '.simg' | '.sif';
  /** Connect, response-header and idle-body timeout of every Dropbox request. */
  readonly timeoutMs: number;
  /** How long a read through the mount rides out an outage before it fails with EIO. */
  readonly readDeadlineMs: number;
  /** Where each credential came from, for `backend status` and errors (never the value). */
  readonly sources: Readonly<Record<string, 'env' | 'secrets' | 'default'>>;
}

type Env = Record<string, string | undefined>;
type Secrets = { SREGISTRY_CLIENT?: unknown; dropbox?: Record<string, unknown> } & Record<string, unknown>;

interface Option<K extends keyof Config> {
  key: K;
  env: string;
  /** Key inside the secrets file's "dropbox" object, for credentials and network settings. */
  secret?: string;
  /** A global command-line flag (`--name`) that overrides the environment. */
  flag?: string;
  default: (env: Env) => Config[K];
  parse: (text: string, env: string) => Config[K];
  help: string;
}

const home = (env: Env): string => env.HOME ?? os.homedir();
const dir = (t: string): string => path.resolve(t.replace(/^~(?=$|\/)/, os.homedir()));

function endpointUrl(t: string, name: string): string {
  let u: URL;
  try {
    u = new URL(t);
  } catch {
    throw new ConfigError(`${name} must be a URL like http://127.0.0.1:8765, got '${t}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`${name} must be an http:// or https:// URL, got '${t}'`);
  return u.origin;
}

function byteSize(t: string, name: string): number {
  let n: number;
  try {
    n = parseBytes(t);
  } catch (e) {
    throw new ConfigError(`${name}: ${(e as Error).message}`);
  }
  if (n < 4096) throw new ConfigError(`${name} must be at least 4096 bytes, got '${t}'`);
  return n;
}

function threads(t: string, name: string): number {
  const n = Number(t);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new ConfigError(`${name} must be a whole number from 1 to 64, got '${t}'`);
  return n;
}

function imageExtension(t: string, name: string): '.simg' | '.sif' {
  const e = t.trim().toLowerCase().replace(/^\./, '');
  if (e !== 'simg' && e !== 'sif') throw new ConfigError(`${name} must be simg or sif, got '${t}'`);
  return `.${e}`;
}

/** A token as read from a CRLF file or a copy-paste: surrounding whitespace goes; an inner control character is an error that never shows the token. */
function token(t: string, name: string): string {
  const v = t.trim();
  if (v === '') throw new ConfigError(`${name} is empty (only whitespace)`);
  const at = [...v].findIndex((c) => c.charCodeAt(0) <= 0x20 || (c.charCodeAt(0) >= 0x7f && c.charCodeAt(0) <= 0x9f));
  if (at >= 0) {
    const code = [...v][at]!.charCodeAt(0);
    const what = code === 0x20 ? 'a space' : `a control character (U+${code.toString(16).toUpperCase().padStart(4, '0')})`;
    throw new ConfigError(`${name} contains ${what} at position ${at + 1} of ${[...v].length}: copy the token again without it`);
  }
  return v;
}

/** 1/0, true/false, yes/no, on/off (any case). */
function onOff(t: string, name: string): boolean {
  const v = t.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(`${name} must be 1 or 0 (on or off), got '${t}'`);
}

/** Seconds (decimals allowed, e.g. 0.5) → milliseconds. */
function seconds(min: number, max: number) {
  return (t: string, name: string): number => {
    const n = Number(t.trim());
    if (t.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new ConfigError(`${name} must be a number of seconds from ${min} to ${max}, got '${t}'`);
    return Math.round(n * 1000);
  };
}

/** The table. Order is the order `sreg backend status` shows. */
export const OPTIONS = [
  { key: 'accessToken', env: 'SREGISTRY_DROPBOX_TOKEN', secret: 'SREGISTRY_DROPBOX_TOKEN', default: () => undefined, parse: token, help: 'Dropbox access token' },
  { key: 'refreshToken', env: 'SREGISTRY_DROPBOX_REFRESH_TOKEN', secret: 'SREGISTRY_DROPBOX_REFRESH_TOKEN', default: () => undefined, parse: token, help: 'Dropbox refresh token (from `sreg backend login dropbox`)' },
  { key: 'appKey', env: 'SREGISTRY_DROPBOX_APP_KEY', secret: 'SREGISTRY_DROPBOX_APP_KEY', default: () => undefined, parse: token, help: 'the Dropbox app key (needed with a refresh token)' },
  { key: 'appSecret', env: 'SREGISTRY_DROPBOX_APP_SECRET', secret: 'SREGISTRY_DROPBOX_APP_SECRET', default: () => undefined, parse: token, help: 'the Dropbox app secret (not for PKCE apps)' },
  { key: 'endpoint', env: 'SREGISTRY_DROPBOX_ENDPOINT', default: () => undefined, parse: endpointUrl, help: 'send Dropbox requests here instead (the emulator)' },
  { key: 'databaseDir', env: 'SREGISTRY_DATABASE', default: (e: Env) => path.join(home(e), '.singularity'), parse: dir, help: 'folder of sregistry.db' },
  { key: 'storageDir', env: 'SREGISTRY_STORAGE', default: (e: Env) => path.join(home(e), '.singularity', 'shub'), parse: dir, help: 'where pull stores images' },
  { key: 'imageExtension', env: 'SREGISTRY_DROPBOX_EXTENSION', secret: 'SREGISTRY_DROPBOX_EXTENSION', default: () => '.simg' as const, parse: imageExtension, help: 'extension of a new image in Dropbox: simg (default) or sif (what sregistry 0.2.39 finds)' },
  { key: 'threads', env: 'SREGISTRY_PYTHON_THREADS', default: () => 9, parse: threads, help: 'parallel transfer workers' },
  { key: 'cacheDir', env: 'SINGULARITY_CACHEDIR', default: (e: Env) => path.join(home(e), '.singularity'), parse: dir, help: 'root of the block cache and upload spool' },
  { key: 'logMaxBytes', env: 'SREG_LOG_MAX_BYTES', default: () => 10 * 1024 * 1024, parse: byteSize, help: 'a mount log is rotated past this size (one old copy kept)' },
  { key: 'runtimeDir', env: 'XDG_RUNTIME_DIR', default: () => undefined, parse: dir, help: "the mount's control socket goes in $XDG_RUNTIME_DIR/sreg (else in the cache folder)" },
  {
    key: 'timeoutMs',
    env: 'SREGISTRY_DROPBOX_TIMEOUT',
    secret: 'SREGISTRY_DROPBOX_TIMEOUT',
    flag: 'dropbox-timeout',
    default: () => 30_000,
    parse: seconds(0.1, 3600),
    help: 'seconds a Dropbox request may take to connect, to start answering, or between two pieces of its answer (default 30); a stalled request is retried, at most 3 times',
  },
  {
    key: 'readDeadlineMs',
    env: 'SREGISTRY_READ_DEADLINE',
    secret: 'SREGISTRY_READ_DEADLINE',
    flag: 'read-deadline',
    default: () => 60_000,
    parse: seconds(0, 86400),
    help: 'seconds a read through the mount waits out a network or Dropbox outage before it fails with EIO (default 60)',
  },
  { key: 'cacheDirectWrites', env: 'SREG_CACHE_DIRECT_WRITES', default: () => true, parse: onOff, help: 'write block files with O_DIRECT, not through the page cache, where the filesystem takes it (0: always through it)' },
  { key: 'disableCache', env: 'SINGULARITY_DISABLE_CACHE', default: () => false, parse: () => true, help: 'cache in a temporary folder removed at exit' },
] as const satisfies readonly Option<keyof Config>[];

/**
 * Global flags of the table (`--dropbox-timeout 5`) as the environment variables they stand for:
 * the CLI lays them over the environment, so a mount's daemon inherits them too.
 */
export function flagsAsEnv(args: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const o of OPTIONS) {
    if (!('flag' in o)) continue;
    const v = args[o.flag];
    if ((typeof v === 'string' && v !== '') || typeof v === 'number') out[o.env] = String(v);
  }
  return out;
}

export function secretsPath(env: Env): string {
  const p = env.SREGISTRY_CLIENT_SECRETS;
  return p ? dir(p) : path.join(home(env), '.sregistry');
}

export function readSecrets(file: string): Secrets {
  let raw: string;
  try {
    raw = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return {};
    throw new ConfigError(`cannot read the secrets file ${file}: ${(e as Error).message}`);
  }
  if (raw.trim() === '') return {};
  try {
    const parsed = JSON.parse(raw) as unknown;
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as Secrets;
  } catch (e) {
    throw new ConfigError(`the secrets file ${file} is not valid JSON (${(e as Error).message}): fix or remove it`);
  }
}

export function loadConfig(env: Env): Config {
  const client = env.SREGISTRY_CLIENT;
  if (client !== undefined && client !== '' && client !== 'dropbox') {
    throw new ConfigError(`SREGISTRY_CLIENT is '${client}', but sreg is a Dropbox client: unset it or set it to dropbox`);
  }
  const secretsFile = secretsPath(env);
  const secrets = readSecrets(secretsFile);
  const dropbox = secrets.dropbox && typeof secrets.dropbox === 'object' ? secrets.dropbox : {};
  const out: Record<string, unknown> = { secretsFile };
  const sources: Record<string, 'env' | 'secrets' | 'default'> = {};
  for (const o of OPTIONS) {
    const fromEnv = env[o.env];
    const raw = 'secret' in o ? dropbox[o.secret] : undefined;
    const fromSecrets = typeof raw === 'number' ? String(raw) : raw;
    if (fromEnv !== undefined && fromEnv !== '') {
      out[o.key] = o.parse(fromEnv, o.env);
      sources[o.key] = 'env';
    } else if (typeof fromSecrets === 'string' && fromSecrets !== '') {
      out[o.key] = o.parse(fromSecrets, `${o.env} in ${secretsFile}`);
      sources[o.key] = 'secrets';
    } else {
      out[o.key] = o.default(env);
      sources[o.key] = 'default';
    }
  }
  out.sources = Object.freeze(sources);
  return Object.freeze(out) as unknown as Config;
}
