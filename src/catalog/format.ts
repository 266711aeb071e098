/**
 * The text of `images` and `inspect`, as the Python client prints it (sregistry-cli
 * `sregistry/database/sqlite.py` images()/inspect(), `logger` bot.table()) and the seed shows.
 */
import { pythonJsonDumps } from './pyjson.js';
import type { ContainerRecord } from './types.js';

const MONTHS = [
  'January', 'February', 'March', 'April', 'May', 'June',
  'July', 'August', 'September', 'October', 'November', 'December',
] as const;

interface DateTimeParts {
  year: number;
  month: number;
  day: number;
  time: string;
  /** Microseconds, 0 when none were stored. */
  micros: number;
}

/** Reads a stored DATETIME as SQLAlchemy's SQLite dialect does (`YYYY-MM-DD[ HH:MM:SS[.ffffff]]`). */
function parseDateTime(text: string | null): DateTimeParts | undefined {
  if (text === null) return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?)?/.exec(text);
  if (!m) return undefined;
  const time = m[4] === undefined ? '00:00:00' : `${m[4]}:${m[5] ?? '00'}:${m[6] ?? '00'}`;
  return {
    year: Number(m[1]),
    month: Number(m[2]),
    day: Number(m[3]),
    time,
    micros: m[7] === undefined ? 0 : Number(m[7].padEnd(6, '0')),
  };
}

/** Python's `str(datetime)`: `2018-01-28 18:42:13`, with `.ffffff` only when there are microseconds.
 *  Text that is not a date is returned as it is. */
export function pythonDateTimeString(text: string | null): string | null {
  const d = parseDateTime(text);
  if (!d) return text;
  const date = `${String(d.year).padStart(4, '0')}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;
  return `${date} ${d.time}${d.micros ? '.' + String(d.micros).padStart(6, '0') : ''}`;
}

/** `strftime('%B %d, %Y')`: `January 28, 2018` (day zero-padded, English month). '' when unreadable. */
export function imagesDate(text: string | null): string {
  const d = parseDateTime(text);
  const month = d ? MONTHS[d.month - 1] : undefined;
  if (!d || !month) return '';
  return `${month} ${String(d.day).padStart(2, '0')}, ${d.year}`;
}

/** The Container model's get_uri(): `collection/name:tag`, `@version` unless the version is empty. */
export function recordUri(rec: ContainerRecord): string {
  const base = `${rec.collection}/${rec.name}:${rec.tag}`;
  return rec.version ? `${base}@${rec.version}` : base;
}

/** The header `images` prints above its rows. */
export const IMAGES_HEADER = 'Containers:   [date]   [client]\t[uri]';

/**
 * One row of `images`: `30 January 28, 2018\t[dropbox]\tpusheen/asaurus:blue@02c08…`.
 * `rowNumber` is the 1-based position in the listing (bot.table numbers rows; it is not the
 * row id: the seed lists id 33 as row 31), padded to two columns then a space.
 * The client is written `[dropbox]` as in the seed; later Python versions put three spaces
 * before it.
 */
export function formatImagesLine(rec: ContainerRecord, rowNumber: number): string {
  return `${String(rowNumber).padEnd(2)} ${imagesDate(rec.createdAt)}\t[${rec.client}]\t${recordUri(rec)}`;
}

/**
 * What `inspect` prints after the path: the record's columns plus `collection` (its name),
 * `metrics` parsed, `created_at` as Python's str(datetime); sorted keys, 4-space indent,
 * ASCII-only (json.dumps(fields, indent=4, sort_keys=True)).
 */
export function inspectJson(rec: ContainerRecord): string {
  return pythonJsonDumps(inspectFields(rec), { indent: 4, sortKeys: true });
}

/** The object `inspectJson` prints (also what the mount's `user.sregistry.inspect` holds). */
export function inspectFields(rec: ContainerRecord): Record<string, unknown> {
  return {
    client: rec.client,
    collection: rec.collection,
    collection_id: rec.collectionId,
    created_at: pythonDateTimeString(rec.createdAt),
    id: rec.id,
    image: rec.image,
    metrics: rec.metrics,
    name: rec.name,
    tag: rec.tag,
    uri: rec.uri,
    url: rec.url,
    version: rec.version,
  };
}
