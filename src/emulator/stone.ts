/**
 * A small Stone-style validator for request arguments. Unknown fields, wrong types, missing
 * required fields, failed patterns and unknown union tags are refused with the real service's
 * 400 wording; defaults are filled in. Requests may use the bare-string shorthand for void
 * union members (`"add"`), never for members with a value.
 */
export class StoneError extends Error {}

export type Type =
  | { kind: 'string'; pattern?: RegExp; patternText?: string; minLength?: number; maxLength?: number }
  | { kind: 'bool' }
  | { kind: 'uint'; min?: number; max?: number }
  | { kind: 'timestamp' }
  | { kind: 'list'; of: Type; maxItems?: number }
  | { kind: 'nullable'; of: Type }
  | { kind: 'struct'; fields: Record<string, Field> }
  | { kind: 'union'; members: Record<string, Type | null> };

export interface Field {
  type: Type;
  required?: boolean;
  default?: unknown;
}

export const str = (opts: Omit<Extract<Type, { kind: 'string' }>, 'kind'> = {}): Type => ({ kind: 'string', ...opts });
export const bool: Type = { kind: 'bool' };
export const uint = (min?: number, max?: number): Type => ({ kind: 'uint', min, max });
export const timestamp: Type = { kind: 'timestamp' };
export const list = (of: Type, maxItems?: number): Type => ({ kind: 'list', of, maxItems });
export const nullable = (of: Type): Type => ({ kind: 'nullable', of });
export const struct = (fields: Record<string, Field>): Type => ({ kind: 'struct', fields });
export const union = (members: Record<string, Type | null>): Type => ({ kind: 'union', members });
export const req = (type: Type): Field => ({ type, required: true });
export const opt = (type: Type, def?: unknown): Field => ({ type, default: def });

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

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

export function validate(value: unknown, type: Type, where = ''): unknown {
  switch (type.kind) {
    case 'string': {
      if (typeof value !== 'string') throw at(where, `expected string, got ${typeName(value)}`);
      if (type.minLength !== undefined && value.length < type.minLength)
        throw at(where, `'${value}' has fewer than ${type.minLength} character(s)`);
      if (type.maxLength !== undefined && value.length > type.maxLength)
        throw at(where, `string has more than ${type.maxLength} character(s)`);
      if (type.pattern && !type.pattern.test(value))
        throw at(where, `'${value}' did not match pattern '${type.patternText ?? type.pattern.source}'`);
      return value;
    }
    case 'bool':
      if (typeof value !== 'boolean') throw at(where, `expected boolean, got ${typeName(value)}`);
      return value;
    case 'uint':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0)
        throw at(where, `expected unsigned integer, got ${typeName(value)}`);
      if (type.min !== undefined && value < type.min) throw at(where, `${value} is not greater than or equal to ${type.min}`);
      if (type.max !== undefined && value > type.max) throw at(where, `${value} is not less than or equal to ${type.max}`);
      return value;
    case 'timestamp':
      if (typeof value !== 'string') throw at(where, `expected timestamp, got ${typeName(value)}`);
      if (!TIMESTAMP.test(value) || Number.isNaN(Date.parse(value)))
        throw at(where, `time data '${value}' does not match format '%Y-%m-%dT%H:%M:%SZ'`);
      return value;
    case 'list': {
      if (!Array.isArray(value)) throw at(where, `expected list, got ${typeName(value)}`);
      if (type.maxItems !== undefined && value.length > type.maxItems)
        throw at(where, `list has more than ${type.maxItems} item(s)`);
      return value.map((v, i) => validate(v, type.of, `${where}[${i}]`));
    }
    case 'nullable':
      return value === null ? null : validate(value, type.of, where);
    case 'struct': {
      if (value === null || typeof value !== 'object' || Array.isArray(value))
        throw at(where, `expected object, got ${typeName(value)}`);
      const obj = value as Record<string, unknown>;
      for (const k of Object.keys(obj)) {
        if (!(k in type.fields)) throw at(where, `unknown field '${k}'`);
      }
      const out: Record<string, unknown> = {};
      for (const [k, f] of Object.entries(type.fields)) {
        const sub = where ? `${where}.${k}` : k;
        if (obj[k] === undefined || (obj[k] === null && !f.required && f.type.kind !== 'nullable')) {
          if (f.required) throw at(where, `missing required field '${k}'`);
          if (f.default !== undefined) out[k] = f.default;
          continue;
        }
        out[k] = validate(obj[k], f.type, sub);
      }
      return out;
    }
    case 'union': {
      let tag: unknown;
      let obj: Record<string, unknown> = {};
      if (typeof value === 'string') {
        tag = value;
      } else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        obj = value as Record<string, unknown>;
        tag = obj['.tag'];
        if (tag === undefined) throw at(where, `missing '.tag' key`);
      } else {
        throw at(where, `expected object, got ${typeName(value)}`);
      }
      if (typeof tag !== 'string' || !(tag in type.members)) throw at(where, `unknown tag '${String(tag)}'`);
      const member = type.members[tag];
      if (member === null || member === undefined) {
        for (const k of Object.keys(obj)) if (k !== '.tag') throw at(where, `unexpected field '${k}'`);
        return { '.tag': tag };
      }
      if (typeof value === 'string') throw at(where, `tag '${tag}' requires a value`);
      if (member.kind === 'struct') {
        const { '.tag': _t, ...rest } = obj;
        return { '.tag': tag, ...(validate(rest, member, where) as object) };
      }
      for (const k of Object.keys(obj)) if (k !== '.tag' && k !== tag) throw at(where, `unexpected field '${k}'`);
      return { '.tag': tag, [tag]: validate(obj[tag], member, `${where ? where + '.' : ''}${tag}`) };
    }
  }
}
