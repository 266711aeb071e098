/** The shape of one API route: where it lives, how its argument travels, and its handler. */
import type { Auth } from '../auth.js';
import type { RequestContext } from '../context.js';
import type { Control } from '../control.js';
import type { Json } from '../errors.js';
import type { Namespace } from '../namespace.js';
import type { Type } from '../stone.js';
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
  /** Cursor epoch: changed by reset-cursors, so older cursors get `reset`. */
  epoch(): string;
  resetCursors(): void;
}

export interface Route {
  host: Host;
  /** rpc: JSON body; upload: arg in header, bytes in body; download: arg in header, bytes out. */
  style: 'rpc' | 'upload' | 'download';
  /** false for longpoll (noauth). */
  auth: boolean;
  /** null: a void argument. */
  arg: Type | null;
  /**
   * Returns the JSON result for rpc/upload routes (undefined → `null`). Download routes
   * answer through ctx themselves and return undefined.
   */
  handle(state: State, ctx: RequestContext, arg: never): Promise<Json | undefined> | Json | undefined;
}

export type RouteTable = Record<string, Route>;
