/**
 * The served routes: each route's code (files, transfer, sharing, account, …) joined with the
 * specification's entry of the same name (host, style, auth, argument, result and error
 * types). A route the specification does not have is a start-up error, so the emulator cannot
 * serve an argument shape Dropbox does not have. Everything else is answered as Dropbox
 * answers an unknown function.
 */
import { specRoute } from '../spec.js';
import { accountRoutes } from './account.js';
import { batchRoutes } from './batch.js';
import { fileRoutes } from './files.js';
import { legacyRoutes } from './legacy.js';
import { searchRoutes } from './search.js';
import { sharingRoutes } from './sharing.js';
import { transferRoutes } from './transfer.js';
import type { Route, RouteTable } from './types.js';

function join(impls: RouteTable): Record<string, Route> {
  const out: Record<string, Route> = {};
  for (const [name, impl] of Object.entries(impls)) {
    const spec = specRoute(name);
    if (!spec) throw new Error(`emulator route ${name} is not in the API specification`);
    const auth = spec.attrs.auth === 'noauth' ? 'none' : spec.attrs.auth.includes('user') ? 'user' : 'app';
    out[name] = {
      ...impl,
      name,
      host: spec.attrs.host,
      style: spec.attrs.style,
      auth,
      deprecated: spec.deprecated,
      arg: spec.arg,
      result: spec.result,
      error: spec.error,
    };
  }
  return out;
}

export const ROUTES: Readonly<Record<string, Route>> = join({
  ...fileRoutes,
  ...transferRoutes,
  ...sharingRoutes,
  ...accountRoutes,
  ...legacyRoutes,
  ...batchRoutes,
  ...searchRoutes,
});
