/**
 * Writes the secrets file (the Python client's ~/.sregistry format) atomically, mode 0600.
 * Only what a command was asked to store goes in: values that came from the environment are
 * never copied into it.
 */
import { chmod, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { readSecrets } from './index.js';

export type SecretsObject = Record<string, unknown>;

export async function updateSecrets(file: string, change: (s: SecretsObject) => void): Promise<SecretsObject> {
  const secrets: SecretsObject = readSecrets(file);
  change(secrets);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}`);
  await writeFile(tmp, `${JSON.stringify(secrets, null, 4)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
  return secrets;
}
