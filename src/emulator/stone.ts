/**
 * Stone's JSON rules over the types of Dropbox's specification (spec.ts), both ways.
 *
 * `decode` reads a request argument as the real service does: unknown fields, wrong types,
 * missing required fields, out-of-range numbers, strings failing a pattern or a length, unknown
 * union tags and enumerated subtypes are refused (StoneError, which the server turns into the
 * 400 plain-text answer); defaults are filled in. Requests may use the bare-string shorthand
 * for void union members (`"add"`), never for members with a value. A `null` for an optional
 * field that is not nullable counts as absent.
 *
 * `conform` checks a value the emulator is about to send against a result or error type:
 * every field is one the specification has, required ones are there, `.tag` appears exactly
 * where the declared type has enumerated subtypes, unions use their wire forms.
 */
import { patternRegExp, specType, wireDefault, type Primitive, type SpecField, type SpecStruct, type TypeRef } from './spec.js';

export class StoneError extends Error {}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const INT_RANGE: Record<string, [number, number]> = {
  UInt32: [0, 2 ** 32 - 1],
  UInt64: [0, Number.MAX_SAFE_INTEGER],
  Int32: [-(2 ** 31), 2 ** 31 - 1],
  Int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'float';
  if (typeof v === 'object') return 'object';
  return typeof v === 'boolean' ? 'boolean' : typeof v;
}

function at(where: string, message: string): StoneError {
  return new StoneError(where ? `${where}: ${message}` : message);
}

const join = (where: string, key: string): string => (where ? `${where}.${key}` : key);

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Is this field required on the wire (no default, not nullable)? */
export function isRequired(f: SpecField): boolean {
  return !f.has_default && !(typeof f.type === 'object' && 'nullable' in f.type);
}

function primitive(value: unknown, t: Primitive, where: string): unknown {
  switch (t.type) {
    case 'String': {
      if (typeof value !== 'string') throw at(where, `expected string, got ${typeName(value)}`);
      if (t.min_length !== undefined && value.length < t.min_length) throw at(where, `'${value}' has fewer than ${t.min_length} character(s)`);
      if (t.max_length !== undefined && value.length > t.max_length) throw at(where, `string has more than ${t.max_length} character(s)`);
      if (t.pattern !== undefined && !patternRegExp(t.pattern).test(value)) throw at(where, `'${value}' did not match pattern '${t.pattern}'`);
      return value;
    }
    case 'Boolean':
      if (typeof value !== 'boolean') throw at(where, `expected boolean, got ${typeName(value)}`);
      return value;
    case 'Timestamp':
      if (typeof value !== 'string') throw at(where, `expected timestamp, got ${typeName(value)}`);
      if (!TIMESTAMP.test(value) || Number.isNaN(Date.parse(value))) throw at(where, `time data '${value}' does not match format '%Y-%m-%dT%H:%M:%SZ'`);
      return value;
    case 'Float32':
    case 'Float64':
      if (typeof value !== 'number') throw at(where, `expected float, got ${typeName(value)}`);
      if (t.min_value !== undefined && value < t.min_value) throw at(where, `${value} is not greater than or equal to ${t.min_value}`);
      if (t.max_value !== undefined && value > t.max_value) throw at(where, `${value} is not less than or equal to ${t.max_value}`);
      return value;
    case 'Bytes':
      if (typeof value !== 'string') throw at(where, `expected bytes, got ${typeName(value)}`);
      return value;
    default: {
      const [lo, hi] = INT_RANGE[t.type] ?? [0, 0];
      const kind = t.type.startsWith('U') ? 'unsigned integer' : 'integer';
      if (typeof value !== 'number' || !Number.isInteger(value)) throw at(where, `expected ${kind}, got ${typeName(value)}`);
      if (value < lo || value > hi) throw at(where, `${value} is not a valid ${t.type}`);
      if (t.min_value !== undefined && value < t.min_value) throw at(where, `${value} is not greater than or equal to ${t.min_value}`);
      if (t.max_value !== undefined && value > t.max_value) throw at(where, `${value} is not less than or equal to ${t.max_value}`);
      return value;
    }
  }
}

/** The struct to read for a value of a struct type with enumerated subtypes: its `.tag`'s. */
function subtypeOf(t: SpecStruct, value: Record<string, unknown>, where: string): SpecStruct {
  const tag = value['.tag'];
  if (tag === undefined) throw at(where, `missing '.tag' key`);
  const sub = t.subtypes?.find((s) => s.tag === tag);
  if (!sub) throw at(where, `unknown subtype '${JSON.stringify(tag)}'`);
  const st = specType(sub.type) as SpecStruct;
  return st.subtypes?.length ? subtypeOf(st, value, where) : st;
}

/** Decodes a request argument of type `ref`; returns it with defaults filled in. */
export function decode(value: unknown, ref: TypeRef, where = ''): unknown {
  if (ref === 'Void') {
    if (value !== null && value !== undefined) throw at(where, `expected null, got ${typeName(value)}`);
    return null;
  }
  if (typeof ref === 'string') {
    const t = specType(ref);
    return t.kind === 'struct' ? decodeStruct(value, t, where) : decodeUnion(value, t, where);
  }
  if ('nullable' in ref) return value === null ? null : decode(value, ref.nullable, where);
  if ('list' in ref) {
    if (!Array.isArray(value)) throw at(where, `expected list, got ${typeName(value)}`);
    if (ref.min_items !== undefined && value.length < ref.min_items) throw at(where, `list has fewer than ${ref.min_items} item(s)`);
    if (ref.max_items !== undefined && value.length > ref.max_items) throw at(where, `list has more than ${ref.max_items} item(s)`);
    return value.map((v, i) => decode(v, ref.list, `${where}[${i}]`));
  }
  if ('map' in ref) {
    if (!isObject(value)) throw at(where, `expected object, got ${typeName(value)}`);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decode(v, ref.map[1], join(where, k))]));
  }
  return primitive(value, ref, where);
}

function decodeStruct(value: unknown, declared: SpecStruct, where: string): unknown {
  if (!isObject(value)) throw at(where, `expected object, got ${typeName(value)}`);
  const polymorphic = !!declared.subtypes?.length;
  const t = polymorphic ? subtypeOf(declared, value, where) : declared;
  const names = new Set(t.fields.map((f) => f.name));
  for (const k of Object.keys(value)) {
    if (!names.has(k) && !(polymorphic && k === '.tag')) throw at(where, `unknown field '${k}'`);
  }
  const out: Record<string, unknown> = polymorphic ? { '.tag': value['.tag'] } : {};
  for (const f of t.fields) {
    const v = value[f.name];
    if (v === undefined || (v === null && !isRequired(f))) {
      if (v === null && typeof f.type === 'object' && 'nullable' in f.type) out[f.name] = null;
      else if (isRequired(f)) throw at(where, `missing required field '${f.name}'`);
      else if (f.has_default) out[f.name] = wireDefault(f.default);
      continue;
    }
    out[f.name] = decode(v, f.type, join(where, f.name));
  }
  return out;
}

function decodeUnion(value: unknown, t: Extract<ReturnType<typeof specType>, { kind: 'union' }>, where: string): unknown {
  let obj: Record<string, unknown> = {};
  let tag: unknown;
  if (typeof value === 'string') tag = value;
  else if (isObject(value)) {
    obj = value;
    tag = obj['.tag'];
    if (tag === undefined) throw at(where, `missing '.tag' key`);
  } else throw at(where, `expected object, got ${typeName(value)}`);
  const member = t.tags.find((m) => m.name === tag);
  if (typeof tag !== 'string' || !member) throw at(where, `unknown tag '${String(tag)}'`);
  if (member.type === 'Void') {
    for (const k of Object.keys(obj)) if (k !== '.tag') throw at(where, `unexpected field '${k}'`);
    return { '.tag': tag };
  }
  const nullable = typeof member.type === 'object' && 'nullable' in member.type;
  const inner = nullable ? (member.type as { nullable: TypeRef }).nullable : member.type;
  if (typeof value === 'string') {
    if (nullable) return { '.tag': tag };
    throw at(where, `tag '${tag}' requires a value`);
  }
  if (typeof inner === 'string' && inner !== 'Void') {
    const it = specType(inner);
    if (it.kind === 'struct' && !it.subtypes?.length) {
      const { '.tag': _t, ...rest } = obj;
      if (nullable && Object.keys(rest).length === 0) return { '.tag': tag };
      return { '.tag': tag, ...(decodeStruct(rest, it, where) as object) };
    }
  }
  for (const k of Object.keys(obj)) if (k !== '.tag' && k !== tag) throw at(where, `unexpected field '${k}'`);
  if (obj[tag] === undefined || obj[tag] === null) {
    if (nullable) return { '.tag': tag };
    throw at(where, `missing field '${tag}'`);
  }
  return { '.tag': tag, [tag]: decode(obj[tag], inner, join(where, tag)) };
}

/** Throws a StoneError naming the first place where `value` is not a valid `ref` as sent. */
export function conform(value: unknown, ref: TypeRef, where = ''): void {
  if (ref === 'Void') {
    if (value !== null && value !== undefined) throw at(where, `expected null, got ${typeName(value)}`);
    return;
  }
  if (typeof ref === 'string') {
    const t = specType(ref);
    if (t.kind === 'struct') conformStruct(value, t, where);
    else conformUnion(value, t, where);
    return;
  }
  if ('nullable' in ref) {
    if (value !== null) conform(value, ref.nullable, where);
    return;
  }
  if ('list' in ref) {
    if (!Array.isArray(value)) throw at(where, `expected list, got ${typeName(value)}`);
    if (ref.min_items !== undefined && value.length < ref.min_items) throw at(where, `list has fewer than ${ref.min_items} item(s)`);
    if (ref.max_items !== undefined && value.length > ref.max_items) throw at(where, `list has more than ${ref.max_items} item(s)`);
    value.forEach((v, i) => conform(v, ref.list, `${where}[${i}]`));
    return;
  }
  if ('map' in ref) {
    if (!isObject(value)) throw at(where, `expected object, got ${typeName(value)}`);
    for (const [k, v] of Object.entries(value)) conform(v, ref.map[1], join(where, k));
    return;
  }
  primitive(value, ref, where);
}

function conformStruct(value: unknown, declared: SpecStruct, where: string): void {
  if (!isObject(value)) throw at(where, `expected object, got ${typeName(value)}`);
  const polymorphic = !!declared.subtypes?.length;
  const t = polymorphic ? subtypeOf(declared, value, where) : declared;
  const names = new Set(t.fields.map((f) => f.name));
  for (const k of Object.keys(value)) {
    if (!names.has(k) && !(polymorphic && k === '.tag')) throw at(where, `field '${k}' is not in the specification`);
  }
  for (const f of t.fields) {
    const v = value[f.name];
    if (v === undefined) {
      if (isRequired(f)) throw at(where, `missing required field '${f.name}'`);
      continue;
    }
    conform(v, f.type, join(where, f.name));
  }
}

function conformUnion(value: unknown, t: Extract<ReturnType<typeof specType>, { kind: 'union' }>, where: string): void {
  if (!isObject(value)) throw at(where, `expected a union object with '.tag', got ${typeName(value)}`);
  const tag = value['.tag'];
  const member = t.tags.find((m) => m.name === tag);
  if (typeof tag !== 'string' || !member) throw at(where, `unknown tag '${String(tag)}'`);
  const keys = Object.keys(value).filter((k) => k !== '.tag');
  if (member.type === 'Void') {
    if (keys.length) throw at(where, `unexpected field '${keys[0]}' next to void tag '${tag}'`);
    return;
  }
  const nullable = typeof member.type === 'object' && 'nullable' in member.type;
  const inner = nullable ? (member.type as { nullable: TypeRef }).nullable : member.type;
  if (typeof inner === 'string' && inner !== 'Void') {
    const it = specType(inner);
    if (it.kind === 'struct' && !it.subtypes?.length) {
      if (nullable && keys.length === 0) return;
      const { '.tag': _t, ...rest } = value;
      conformStruct(rest, it, where);
      return;
    }
  }
  for (const k of keys) if (k !== tag) throw at(where, `unexpected field '${k}' next to tag '${tag}'`);
  if (value[tag] === undefined) {
    if (nullable) return;
    throw at(where, `missing field '${tag}'`);
  }
  if (value[tag] === null && nullable) return;
  conform(value[tag], inner, join(where, tag));
}
