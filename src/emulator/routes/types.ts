/** The shape of one API route: where it lives, how its argument travels, and its handler. */
import type { Auth } from '../auth.js';
import type { RequestContext } from '../context.js';
import type { Control } from '../control.js';
import type { Json } from '../errors.js';
import type { Namespace } from '../namespace.js';
import type { TypeRef } from '../spec.js';
import type Database from 'better-sqlite3';

export type Host = 'api' | 'content' | 'notify';
export const HOSTNAMES: Record<Host, string> = {
  api: 'api.dropboxapi.com',
  content: 'content.dropboxapi.com',
  notify: 'notify.dropboxapi.com',
};

export interface State {
  root: string;
  db: Database.Database;
  ns: Namespace;
  auth: Auth;
  control: Control;
  account: { accountId: string; displayName: string; email: string };
  quotaBytes: number;
  /** Check every result and 409 error against the specification before sending it (tests). */
  checkResults: boolean;
  /** Cursor epoch: changed by reset-cursors, so older cursors get `reset`. */
  epoch(): string;
  resetCursors(): void;
}

/** What a route's code supplies; everything else comes from the specification (routes/index.ts). */
export interface RouteImpl {
  /**
   * Returns the JSON result for rpc/upload routes (undefined → `null`). Download routes
   * answer through ctx themselves and return undefined.
   */
  handle(state: State, ctx: RequestContext, arg: never): Promise<Json | undefined> | Json | undefined;
  /** Checks the raw argument before the specification does (a root-folder 400 in Dropbox's words). */
  precheck?(route: string, raw: unknown): void;
}

export type RouteTable = Record<string, RouteImpl>;

/** A served route: the code's part and the specification's. */
export interface Route extends RouteImpl {
  name: string;
  host: Host;
  /** rpc: JSON body; upload: arg in header, bytes in body; download: arg in header, bytes out. */
  style: 'rpc' | 'upload' | 'download';
  /** user: bearer token; app: HTTP Basic app key and secret; none: longpoll. */
  auth: 'user' | 'app' | 'none';
  deprecated: boolean;
  arg: TypeRef;
  result: TypeRef;
  error: TypeRef;
}
