/**
 * The conformance walk: for every route the emulator serves, Dropbox's specification
 * (spec/dropbox-api) is walked field by field.
 * - the set of argument fields the emulator accepts equals the specification's: each of the
 *   spec's fields is read and type-checked (a wrongly typed value is refused *naming that
 *   field*, not as an unknown one), a field the spec does not have is refused as unknown;
 * - a call with a minimal valid argument is never refused by the argument check and its
 *   answer (result or 409 error) matches the spec's types: the tests' emulator runs with
 *   SREG_EMULATOR_CHECK_RESULTS=1, which turns any mismatch into a 500 and fails the test.
 * Routes of the spec it does not serve are answered as Dropbox answers an unknown function.
 */
import test, { type ExecutionContext } from 'ava';
import { ROUTES } from '../../src/emulator/routes/index.js';
import { patternRegExp, specRoutes, specType, type Primitive, type SpecStruct, type TypeRef } from '../../src/emulator/spec.js';
import { isRequired } from '../../src/emulator/stone.js';
import { startEmulator, type Emulator } from '../helpers/emulator.js';

const APP_SECRET = 'walk-secret';
const SAMPLE_STRINGS = ['/w/f.txt', 'id:walk', 'a', '0123456789abcdef', 'https://www.dropbox.com/scl/fi/x/f.txt?rlkey=y&dl=0'];

/** A small value of a type, valid for the argument check (not necessarily for the handler). */
function sample(ref: TypeRef): unknown {
  if (ref === 'Void') return null;
  if (typeof ref === 'string') {
    const t = specType(ref);
    if (t.kind === 'union') {
      const tag = t.tags.find((m) => m.type === 'Void' && m.name !== 'other') ?? t.tags[0]!;
      if (tag.type === 'Void') return { '.tag': tag.name };
      return { '.tag': tag.name, [tag.name]: sample(tag.type) };
    }
    const st = t.subtypes?.length ? (specType(t.subtypes[0]!.type) as SpecStruct) : t;
    const out: Record<string, unknown> = t.subtypes?.length ? { '.tag': t.subtypes[0]!.tag } : {};
    for (const f of st.fields) if (isRequired(f)) out[f.name] = sample(f.type);
    return out;
  }
  if ('nullable' in ref) return null;
  if ('list' in ref) return ref.min_items ? Array.from({ length: ref.min_items }, () => sample(ref.list)) : [];
  if ('map' in ref) return {};
  return primitiveSample(ref);
}

function primitiveSample(p: Primitive): unknown {
  switch (p.type) {
    case 'String': {
      const min = p.min_length ?? 0;
      const max = p.max_length ?? Infinity;
      const ok = (s: string): boolean => s.length >= min && s.length <= max && (!p.pattern || patternRegExp(p.pattern).test(s));
      return SAMPLE_STRINGS.find(ok) ?? 'a'.repeat(Math.max(min, 1));
    }
    case 'Boolean':
      return false;
    case 'Timestamp':
      return '2020-01-01T00:00:00Z';
    case 'Bytes':
      return '';
    default:
      return p.min_value ?? 0;
  }
}

async function send(emu: Emulator, route: string, arg: unknown): Promise<{ status: number; text: string }> {
  const def = ROUTES[route]!;
  const headers: Record<string, string> = {};
  if (def.auth === 'user') headers.authorization = `Bearer ${emu.token}`;
  if (def.auth === 'app') headers.authorization = `Basic ${Buffer.from(`sreg-emulator:${APP_SECRET}`).toString('base64')}`;
  let body: string | undefined;
  if (def.style === 'rpc') {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(arg);
  } else {
    headers['dropbox-api-arg'] = JSON.stringify(arg).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    if (def.style === 'upload') {
      headers['content-type'] = 'application/octet-stream';
      body = '';
    }
  }
  const res = await fetch(`${emu.url}/2/${route}`, { method: 'POST', headers, body, signal: AbortSignal.timeout(30_000) });
  return { status: res.status, text: await res.text() };
}

const argPrefix = (route: string): string => (ROUTES[route]!.style === 'rpc' ? 'request body: ' : 'HTTP header "Dropbox-API-Arg": ');
// auth/token/revoke last: it ends the token the walk uses.
const served = Object.keys(ROUTES).sort((a, b) => Number(a === 'auth/token/revoke') - Number(b === 'auth/token/revoke') || a.localeCompare(b));

async function walkEmulator(t: ExecutionContext): Promise<Emulator> {
  const emu = await startEmulator(t, { args: ['--app-secret', APP_SECRET] });
  await emu.admin('POST', '/config', { longpollMaxWaitSec: 1 });
  const put = await fetch(`${emu.url}/2/files/upload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${emu.token}`, 'content-type': 'application/octet-stream', 'dropbox-api-arg': JSON.stringify({ path: '/w/f.txt' }) },
    body: 'walk',
  });
  t.is(put.status, 200);
  return emu;
}

test('every served route is in the specification, with its host, style and types', (t) => {
  t.true(served.length > 30, `${served.length} routes served`);
  for (const name of served) {
    const spec = specRoutes().get(name);
    t.truthy(spec, name);
    const def = ROUTES[name]!;
    t.deepEqual([def.host, def.style, def.arg, def.result, def.error], [spec!.attrs.host, spec!.attrs.style, spec!.arg, spec!.result, spec!.error], name);
  }
});

test('each served route accepts exactly the argument fields of the specification', async (t) => {
  const emu = await walkEmulator(t);
  let probed = 0;
  for (const route of served) {
    const arg = ROUTES[route]!.arg;
    const prefix = argPrefix(route);
    if (arg === 'Void') {
      const r = await send(emu, route, { zz_not_in_spec: 1 });
      t.is(r.status, 400, `${route}: ${r.text}`);
      continue;
    }
    if (typeof arg !== 'string' || specType(arg).kind !== 'struct') continue;
    const base = sample(arg) as Record<string, unknown>;
    const unknown = await send(emu, route, { ...base, zz_not_in_spec: 1 });
    t.is(unknown.status, 400, `${route} unknown field: ${unknown.text}`);
    t.true(unknown.text.includes(`${prefix}unknown field 'zz_not_in_spec'`), `${route}: ${unknown.text}`);
    const st = specType(arg) as SpecStruct;
    const fields = st.subtypes?.length ? (specType(st.subtypes[0]!.type) as SpecStruct).fields : st.fields;
    for (const f of fields) {
      const r = await send(emu, route, { ...base, [f.name]: { zz: [] } });
      t.is(r.status, 400, `${route}.${f.name}: ${r.text}`);
      // Refused for its type, naming the field: the field is known and checked.
      t.true(r.text.includes(`${prefix}${f.name}`) && !r.text.includes(`unknown field '${f.name}'`), `${route}.${f.name}: ${r.text}`);
      probed++;
    }
  }
  t.log(`${served.length} routes, ${probed} argument fields probed`);
});

test('a minimal valid argument passes the check on every served route, and the answer matches the spec', async (t) => {
  const emu = await walkEmulator(t);
  for (const route of served) {
    const arg = ROUTES[route]!.arg;
    const r = await send(emu, route, sample(arg));
    t.not(r.status, 500, `${route}: ${r.text}`);
    // A 400 here may only be the route's own (a cursor it did not make), never the argument check's.
    if (r.status === 400) t.false(r.text.includes(argPrefix(route)), `${route}: ${r.text}`);
    else t.true([200, 409].includes(r.status), `${route}: ${r.status} ${r.text}`);
  }
});

test('routes of the specification the emulator does not serve are answered as an unknown function', async (t) => {
  const emu = await startEmulator(t);
  const notServed = [...specRoutes().keys()].filter((n) => !(n in ROUTES));
  t.true(notServed.length > 0);
  for (const name of [...notServed.slice(0, 5), 'files/no_such_route']) {
    const res = await fetch(`${emu.url}/2/${name}`, { method: 'POST', headers: { authorization: `Bearer ${emu.token}`, 'content-type': 'application/json' }, body: '{}' });
    t.is(res.status, 400, name);
    t.is(await res.text(), `Error in call to API function "${name}": Unknown API function: /2/${name}`);
  }
});
