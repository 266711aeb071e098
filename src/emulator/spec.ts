/**
 * Dropbox's own API specification (spec/dropbox-api/routes-and-types.json, the Stone spec of
 * dropbox/dropbox-api-spec as JSON; its README explains the layout), loaded once at start.
 * Every route the emulator serves takes its host, style, auth, argument, result and error
 * types from here, so the arguments it accepts are exactly the specification's.
 */
import { readFileSync } from 'node:fs';

export type Primitive = {
  type: 'String' | 'Boolean' | 'UInt32' | 'UInt64' | 'Int32' | 'Int64' | 'Float32' | 'Float64' | 'Timestamp' | 'Bytes';
  pattern?: string;
  min_length?: number;
  max_length?: number;
  min_value?: number;
  max_value?: number;
  format?: string;
};
/** A named type (`files.Metadata`) or `Void`, a primitive, nullable, list or map. */
export type TypeRef =
  | string
  | Primitive
  | { nullable: TypeRef }
  | { list: TypeRef; min_items?: number; max_items?: number }
  | { map: [TypeRef, TypeRef] };

export interface SpecField {
  name: string;
  type: TypeRef;
  has_default: boolean;
  default: unknown;
}
export interface SpecStruct {
  kind: 'struct';
  fields: SpecField[];
  extends?: string;
  subtypes?: { tag: string; type: string }[];
}
export interface SpecUnion {
  kind: 'union';
  closed: boolean;
  tags: { name: string; type: TypeRef }[];
}
export type SpecType = SpecStruct | SpecUnion;

export interface SpecRoute {
  name: string;
  version: number;
  path: string;
  deprecated: boolean;
  arg: TypeRef;
  result: TypeRef;
  error: TypeRef;
  attrs: { host: 'api' | 'content' | 'notify'; style: 'rpc' | 'upload' | 'download'; auth: string; allow_app_folder_app?: boolean };
}

interface SpecFile {
  namespaces: Record<string, { routes: SpecRoute[]; types: Record<string, SpecType> }>;
}

const FILE = new URL('../../../spec/dropbox-api/routes-and-types.json', import.meta.url);

let loaded: { routes: Map<string, SpecRoute & { ns: string }>; types: Map<string, SpecType> } | undefined;

function load(): NonNullable<typeof loaded> {
  if (loaded) return loaded;
  const file = JSON.parse(readFileSync(FILE, 'utf8')) as SpecFile;
  const routes = new Map<string, SpecRoute & { ns: string }>();
  const types = new Map<string, SpecType>();
  for (const [ns, { routes: rs, types: ts }] of Object.entries(file.namespaces)) {
    for (const r of rs) routes.set(`${ns}/${r.path.slice(`/2/${ns}/`.length)}`, { ...r, ns });
    for (const [name, t] of Object.entries(ts)) types.set(`${ns}.${name}`, t);
  }
  loaded = { routes, types };
  return loaded;
}

/** A route by its URL name (`files/list_folder`, `files/copy_v2`), or undefined. */
export function specRoute(name: string): (SpecRoute & { ns: string }) | undefined {
  return load().routes.get(name);
}

/** Every route of the specification, by URL name. */
export function specRoutes(): ReadonlyMap<string, SpecRoute & { ns: string }> {
  return load().routes;
}

/** A named type (`files.Metadata`); throws on a name the specification does not have. */
export function specType(name: string): SpecType {
  const t = load().types.get(name);
  if (!t) throw new Error(`the API specification has no type ${name}`);
  return t;
}

/** A union tag default in the file is `{"tag": "add"}`; on the wire it is `{".tag": "add"}`. */
export function wireDefault(value: unknown): unknown {
  if (value && typeof value === 'object' && !Array.isArray(value) && 'tag' in value) {
    const { tag, ...rest } = value as Record<string, unknown>;
    return { '.tag': tag, ...rest };
  }
  return value;
}

const regexps = new Map<string, RegExp>();
/** A Stone pattern matches the whole string (Python `re.match(pattern + '$')`). */
export function patternRegExp(pattern: string): RegExp {
  let re = regexps.get(pattern);
  if (!re) {
    re = new RegExp(`^(?:${pattern})$`);
    regexps.set(pattern, re);
  }
  return re;
}
