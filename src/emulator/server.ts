/**
 * The HTTP front of the emulator: one port for all of Dropbox's hosts, the admin API under
 * `/__emulator/`, and `/oauth2/`. For `/2/<route>` the order is the real service's: route →
 * method → host → auth (400 / 401) → injected faults → argument (400) → handler (409 or result).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { RequestContext } from './context.js';
import { DROPBOX_HOST_HEADER } from '../dropbox/endpoint.js';
import { badRequest, HttpError, type Json } from './errors.js';
import { conform, decode, StoneError } from './stone.js';
import { ROUTES } from './routes/index.js';
import { HOSTNAMES, type Route, type State } from './routes/types.js';
import { handleAdmin } from './admin.js';

export { ROUTES };

const RPC_TYPES = ['application/json', 'application/json; charset=utf-8', 'text/plain; charset=dropbox-cors-hack'];
const UPLOAD_TYPES = ['application/octet-stream', 'text/plain; charset=dropbox-cors-hack'];

function expecting(route: string, got: string | undefined, allowed: string[]): HttpError {
  return badRequest(route, `Bad HTTP "Content-Type" header: "${got ?? ''}".  Expecting one of ${allowed.map((a) => `"${a}"`).join(', ')}.`);
}

function parseJson(route: string, text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest(route, `${where}could not decode input as JSON`);
  }
}

/** The argument of a content route: `Dropbox-API-Arg` (ASCII only) or the `arg` query parameter. */
function contentArg(route: string, req: IncomingMessage, url: URL): unknown {
  const header = req.headers['dropbox-api-arg'];
  const text = typeof header === 'string' ? header : url.searchParams.get('arg');
  if (text === null || text === undefined) {
    throw badRequest(route, 'Must provide HTTP header "Dropbox-API-Arg" or URL parameter "arg".');
  }
  // Node reads header bytes as Latin-1: anything past 0x7E means raw non-ASCII was sent.
  if (typeof header === 'string' && /[^\x20-\x7e]/.test(header)) {
    throw badRequest(route, 'HTTP header "Dropbox-API-Arg": could not decode input as JSON');
  }
  return parseJson(route, text, 'HTTP header "Dropbox-API-Arg": ');
}

async function decodeArg(route: string, def: Route, ctx: RequestContext, url: URL): Promise<unknown> {
  const { req } = ctx;
  const type = req.headers['content-type'];
  if (def.style === 'rpc') {
    const body = await ctx.readSmallBody();
    if (def.arg === 'Void' && body.length === 0) return null;
    if (!type || !RPC_TYPES.includes(type.toLowerCase())) throw expecting(route, type, RPC_TYPES);
    const value = parseJson(route, body.toString('utf8'), 'request body: ');
    return validateArg(route, value, def, 'request body: ');
  }
  const value = contentArg(route, req, url);
  if (def.style === 'upload') {
    if (!type || !UPLOAD_TYPES.includes(type.toLowerCase())) throw expecting(route, type, UPLOAD_TYPES);
  } else if (Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding']) {
    throw badRequest(route, 'request body is supposed to be empty');
  }
  return validateArg(route, value, def, 'HTTP header "Dropbox-API-Arg": ');
}

function validateArg(route: string, value: unknown, def: Route, where: string): unknown {
  def.precheck?.(route, value);
  try {
    return collapseLeadingSlashes(decode(value, def.arg));
  } catch (e) {
    if (e instanceof StoneError) throw badRequest(route, `${where}${e.message}`);
    throw e;
  }
}

/**
 * Dropbox reads `//dir` as `/dir` (rclone sends it for a remote rooted at the app folder, and
 * it works against the real service; docs/emulator.md). Any string under a key ending in
 * `path` (or in a `paths` list) that starts with two or more slashes gets one.
 */
function collapseLeadingSlashes(v: unknown, key = ''): unknown {
  if (typeof v === 'string') return (key.endsWith('path') || key === 'paths') && v.startsWith('//') ? v.replace(/^\/+/, '/') : v;
  if (Array.isArray(v)) return v.map((x) => collapseLeadingSlashes(x, key));
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, collapseLeadingSlashes(x, k)]));
  }
  return v;
}

/**
 * With `checkResults` on (the test suite), every result and 409 error the emulator sends is
 * checked against the route's types in the specification first; a mismatch is a 500 and a
 * `spec violation` line on stderr, which the tests' emulator helper turns into a failure.
 */
export function checkAgainstSpec(state: State, def: Route, what: 'result' | 'error', value: unknown): void {
  if (!state.checkResults) return;
  try {
    conform(value, what === 'result' ? def.result : def.error);
  } catch (e) {
    if (!(e instanceof StoneError)) throw e;
    const message = `spec violation: ${def.name} ${what} is not a valid ${JSON.stringify(what === 'result' ? def.result : def.error)}: ${e.message}`;
    console.error(`[emulator] ${message}`);
    throw new HttpError(500, message);
  }
}

async function handleApi(state: State, route: string, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const ctx = new RequestContext(route, req, res, state.control);
  const def = ROUTES[route];
  try {
    // Dropbox's words for a function it does not have (docs/emulator.md); the same for
    // routes of the specification this emulator does not serve.
    if (!def) throw badRequest(route, `Unknown API function: /2/${route}`);
    state.control.countRequest(route);
    if (req.method !== 'POST' && !(req.method === 'GET' && def.style === 'download')) {
      throw new HttpError(405, `Error in call to API function "${route}": use POST`, { allow: 'POST' });
    }
    const calledOn = req.headers[DROPBOX_HOST_HEADER];
    if (typeof calledOn === 'string' && calledOn !== HOSTNAMES[def.host]) {
      throw badRequest(route, `This API function is served by ${HOSTNAMES[def.host]}, not ${calledOn}.`);
    }
    const authorization = req.headers.authorization ?? url.searchParams.get('authorization') ?? undefined;
    if (def.auth === 'user') ctx.tokenSha = state.auth.check(route, authorization);
    else if (def.auth === 'app') state.auth.checkApp(route, authorization);
    const fault = state.control.pickFault(route);
    if (fault.error) throw fault.error;
    if (fault.stallAnswer) return await ctx.stall();
    ctx.cutAfterBytes = fault.cutAfterBytes;
    ctx.stallAfterBytes = fault.stallAfterBytes;
    const arg = await decodeArg(route, def, ctx, url);
    ctx.onResult = (value) => checkAgainstSpec(state, def, 'result', value);
    const result = await def.handle(state, ctx, arg as never);
    if (def.style !== 'download') {
      checkAgainstSpec(state, def, 'result', result ?? null);
      state.control.countStatus(200);
      await ctx.sendJson(200, result ?? null);
    } else {
      state.control.countStatus(res.statusCode);
    }
  } catch (e) {
    if (def && e instanceof HttpError && e.status === 409 && typeof e.body === 'object' && e.body !== null && !Array.isArray(e.body)) {
      try {
        checkAgainstSpec(state, def, 'error', e.body.error);
      } catch (violation) {
        return sendError(state, ctx, violation);
      }
    }
    await sendError(state, ctx, e);
  }
}

async function sendError(state: State, ctx: RequestContext, e: unknown): Promise<void> {
  const { res } = ctx;
  const err = e instanceof HttpError ? e : new HttpError(500, 'Internal Server Error (sreg emulator)');
  if (!(e instanceof HttpError)) {
    const code = (e as { code?: string }).code;
    if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (e as Error).message === 'aborted') return;
    console.error(`[emulator] ${ctx.route}: ${(e as Error).stack ?? String(e)}`);
  }
  state.control.countStatus(err.status);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  ctx.drain();
  await ctx.sendJson(err.status, err.body, err.headers);
}

async function handleOAuth(state: State, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const route = url.pathname.slice(1);
  const ctx = new RequestContext(route, req, res, state.control);
  state.control.countRequest(route);
  try {
    if (url.pathname === '/oauth2/authorize' && req.method === 'GET') {
      const { redirect, code } = state.auth.authorize(url.searchParams);
      state.control.countStatus(redirect ? 302 : 200);
      if (redirect) {
        res.writeHead(302, { location: redirect }).end();
        return;
      }
      await ctx.sendJson(200, `sreg emulator: access granted. Enter this code into your app: ${code}\n`);
      return;
    }
    if (url.pathname !== '/oauth2/token' || req.method !== 'POST') throw new HttpError(404, 'Not Found');
    const params = new URLSearchParams(url.searchParams);
    const body = (await ctx.readSmallBody()).toString('utf8');
    if (body && (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      for (const [k, v] of new URLSearchParams(body)) params.set(k, v);
    }
    let basic: { user: string; pass: string } | undefined;
    const m = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    if (m?.[1]) {
      const [user = '', ...pass] = Buffer.from(m[1], 'base64').toString().split(':');
      basic = { user, pass: pass.join(':') };
    }
    const result = state.auth.token(params, basic);
    if (result.account_id === '') result.account_id = state.account.accountId;
    state.control.countStatus(200);
    await ctx.sendJson(200, result as Json);
  } catch (e) {
    await sendError(state, ctx, e);
  }
}

export function requestHandler(state: State): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const work = async (): Promise<void> => {
      if (url.pathname.startsWith('/__emulator/')) return handleAdmin(state, req, res, url);
      const latency = state.control.shaping.latencyMs;
      if (latency > 0) await sleep(latency);
      if (url.pathname.startsWith('/oauth2/')) return handleOAuth(state, req, res, url);
      if (url.pathname.startsWith('/2/')) return handleApi(state, url.pathname.slice(3), req, res, url);
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not Found\n');
    };
    work().catch((e: unknown) => {
      console.error(`[emulator] ${url.pathname}: ${(e as Error).stack ?? String(e)}`);
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  };
}
