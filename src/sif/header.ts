/**
 * Reads a SIF's global header and descriptors: the first 128 bytes and the descriptor table,
 * never the data objects. Every offset and size is checked against the file's size.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { SifError } from './errors.js';
import {
  ARCH_NAMES, D, DATA_TYPE_NAMES, DESCRIPTOR_BYTES, DataType, FS_TYPE_NAMES, GROUP_MASK, H,
  HEADER_BYTES, LAUNCH_BYTES, PART_TYPE_NAMES, PartType, SIF_MAGIC, SIF_VERSION,
} from './format.js';

/** More descriptor slots than any real image has (siftool makes 48); bounds the table we read. */
const MAX_DESCRIPTORS = 4096;

export interface SifPartition {
  /** FsType: 1 squashfs, 2 ext3, 3 archive, 4 raw, 5 encrypted squashfs. */
  fsType: number;
  fsTypeName: string;
  /** PartType: 1 system, 2 primary system, 3 data, 4 overlay. */
  partType: number;
  partTypeName: string;
  /** Go arch name (`amd64`), or `unknown`. */
  arch: string;
}

export interface SifDescriptor {
  dataType: number;
  /** siftool's name: `Def.FILE`, `JSON.Labels`, `FS`, … or `Unknown`. */
  dataTypeName: string;
  id: number;
  /** 0 when the object is in no group. */
  groupId: number;
  /** 0 when linked to nothing; a group id when `linkIsGroup`. */
  linkedId: number;
  linkIsGroup: boolean;
  offset: number;
  size: number;
  sizeWithPadding: number;
  createdAt: Date;
  modifiedAt: Date;
  name: string;
  /** Partitions (data type 0x4004) only. */
  partition?: SifPartition;
}

export interface SifInfo {
  file: string;
  fileSizeBytes: number;
  launchScript: string;
  version: string;
  /** Go arch name of the primary partition (`amd64`), or `unknown`. */
  arch: string;
  /** The image UUID, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. */
  id: string;
  createdAt: Date;
  modifiedAt: Date;
  descriptorsFree: number;
  descriptorsTotal: number;
  descriptorsOffset: number;
  descriptorsSize: number;
  dataOffset: number;
  dataSize: number;
  /** The used descriptors, in table order. */
  descriptors: SifDescriptor[];
}

const decoder = new TextDecoder('utf-8');
/** A fixed-size C string: up to the first NUL (Go trims trailing NULs; the same for real files). */
function cString(buf: Buffer, start: number, length: number): string {
  const slice = buf.subarray(start, start + length);
  const nul = slice.indexOf(0);
  return decoder.decode(nul < 0 ? slice : slice.subarray(0, nul));
}

const archName = (code: string): string => ARCH_NAMES[code] ?? 'unknown';

function formatUuid(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Reads `length` bytes at `position`, failing as `corrupt` on a short read. */
async function readExactly(fh: FileHandle, length: number, position: number, what: string, file: string): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw new SifError('corrupt', `${file}: the SIF ${what} is cut short (${done} of ${length} bytes)`);
    done += bytesRead;
  }
  return buf;
}

function int64(buf: Buffer, at: number, what: string, file: string): number {
  const v = buf.readBigInt64LE(at);
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new SifError('corrupt', `${file}: the SIF ${what} is ${v}`);
  return Number(v);
}

const seconds = (buf: Buffer, at: number): Date => new Date(Number(buf.readBigInt64LE(at)) * 1000);

function parseDescriptor(buf: Buffer, at: number, fileSize: number, file: string): SifDescriptor | undefined {
  if (buf[at + D.used] === 0) return undefined;
  const dataType = buf.readInt32LE(at + D.dataType);
  const id = buf.readUInt32LE(at + D.id);
  const what = (field: string): string => `descriptor ${id} ${field}`;
  const offset = int64(buf, at + D.offset, what('offset'), file);
  const size = int64(buf, at + D.size, what('size'), file);
  if (offset + size > fileSize) {
    throw new SifError('corrupt', `${file}: SIF object ${id} (${offset}+${size} bytes) ends past the end of the file (${fileSize} bytes)`);
  }
  const link = buf.readUInt32LE(at + D.linkedId);
  const d: SifDescriptor = {
    dataType,
    dataTypeName: DATA_TYPE_NAMES[dataType] ?? 'Unknown',
    id,
    groupId: (buf.readUInt32LE(at + D.groupId) & ~GROUP_MASK) >>> 0,
    linkedId: (link & ~GROUP_MASK) >>> 0,
    linkIsGroup: ((link & GROUP_MASK) >>> 0) === GROUP_MASK,
    offset,
    size,
    sizeWithPadding: int64(buf, at + D.sizeWithPadding, what('padded size'), file),
    createdAt: seconds(buf, at + D.createdAt),
    modifiedAt: seconds(buf, at + D.modifiedAt),
    name: cString(buf, at + D.name, D.nameBytes),
  };
  if (dataType === DataType.partition) {
    const fsType = buf.readInt32LE(at + D.extra);
    const partType = buf.readInt32LE(at + D.extra + 4);
    d.partition = {
      fsType,
      fsTypeName: FS_TYPE_NAMES[fsType] ?? 'Unknown',
      partType,
      partTypeName: PART_TYPE_NAMES[partType] ?? 'Unknown',
      arch: archName(cString(buf, at + D.extra + 8, 3)),
    };
  }
  return d;
}

/** Reads the header and descriptors of an open SIF. */
export async function readSifFrom(fh: FileHandle, file: string): Promise<SifInfo> {
  const fileSize = (await fh.stat()).size;
  const head = Buffer.alloc(HEADER_BYTES);
  const { bytesRead } = await fh.read(head, 0, HEADER_BYTES, 0);
  const magicEnd = H.magic + SIF_MAGIC.length;
  if (bytesRead < magicEnd || head.toString('latin1', H.magic, magicEnd) !== SIF_MAGIC) {
    throw new SifError('not_sif', `${file} is not a SIF image (no SIF_MAGIC at byte ${H.magic})`);
  }
  if (bytesRead < HEADER_BYTES) {
    throw new SifError('corrupt', `${file}: the SIF header is cut short (${bytesRead} of ${HEADER_BYTES} bytes)`);
  }
  const version = cString(head, H.version, 3);
  if (version !== SIF_VERSION) {
    throw new SifError('unsupported', `${file} is a SIF of format version '${version}'; sreg reads version ${SIF_VERSION}`);
  }
  const field = (name: keyof typeof H, label: string): number => int64(head, H[name], label, file);
  const total = field('descriptorsTotal', 'descriptor count');
  const free = field('descriptorsFree', 'free descriptor count');
  const descOffset = field('descriptorsOffset', 'descriptor offset');
  const descSize = field('descriptorsSize', 'descriptor table size');
  const dataOffset = field('dataOffset', 'data offset');
  const dataSize = field('dataSize', 'data size');
  const tableBytes = total * DESCRIPTOR_BYTES;
  const problems: string[] = [];
  if (total > MAX_DESCRIPTORS) problems.push(`it claims ${total} descriptors`);
  if (free > total) problems.push(`${free} of ${total} descriptors are free`);
  if (descOffset < HEADER_BYTES) problems.push(`its descriptors start at ${descOffset}, inside the header`);
  if (descSize < tableBytes) problems.push(`its descriptor table is ${descSize} bytes, less than ${total} descriptors need`);
  if (descOffset + tableBytes > fileSize) problems.push(`its descriptor table ends past the end of the file (${fileSize} bytes)`);
  if (dataOffset + dataSize > fileSize) problems.push(`its data section ends past the end of the file (${fileSize} bytes)`);
  if (problems.length > 0) throw new SifError('corrupt', `${file}: the SIF header is inconsistent: ${problems.join('; ')}`);

  const table = await readExactly(fh, tableBytes, descOffset, 'descriptor table', file);
  const descriptors: SifDescriptor[] = [];
  for (let i = 0; i < total; i++) {
    const d = parseDescriptor(table, i * DESCRIPTOR_BYTES, fileSize, file);
    if (d) descriptors.push(d);
  }
  return {
    file,
    fileSizeBytes: fileSize,
    launchScript: cString(head, H.launch, LAUNCH_BYTES),
    version,
    arch: archName(cString(head, H.arch, 3)),
    id: formatUuid(head.subarray(H.id, H.id + 16)),
    createdAt: seconds(head, H.createdAt),
    modifiedAt: seconds(head, H.modifiedAt),
    descriptorsFree: free,
    descriptorsTotal: total,
    descriptorsOffset: descOffset,
    descriptorsSize: descSize,
    dataOffset,
    dataSize,
    descriptors,
  };
}

/**
 * Reads a SIF's global header and its used descriptors (only the header region of the file).
 * @throws SifError `not_sif`, `corrupt` or `unsupported`; file-system errors as they are.
 */
export async function readSif(file: string): Promise<SifInfo> {
  const fh = await open(file, 'r');
  try {
    return await readSifFrom(fh, file);
  } finally {
    await fh.close();
  }
}

export interface PrimaryPartition {
  id: number;
  offset: number;
  size: number;
  fsType: number;
  fsTypeName: string;
  arch: string;
}

/** The primary system partition (the one `singularity run` mounts); undefined when none. */
export function primaryPartition(info: SifInfo): PrimaryPartition | undefined {
  const d = info.descriptors.find((x) => x.partition?.partType === PartType.primSys);
  if (!d?.partition) return undefined;
  const { fsType, fsTypeName, arch } = d.partition;
  return { id: d.id, offset: d.offset, size: d.size, fsType, fsTypeName, arch };
}

/** Reads one data object into memory; for small ones (definition file, labels, …).
 *  @throws SifError `too_large` past `maxBytes` (1 MiB by default), `corrupt` on a short read. */
export async function readDescriptorData(file: string, descriptor: SifDescriptor, maxBytes = 1024 * 1024): Promise<Buffer> {
  if (descriptor.size > maxBytes) {
    throw new SifError('too_large', `${file}: SIF object ${descriptor.id} (${descriptor.dataTypeName}) is ${descriptor.size} bytes, more than ${maxBytes}`);
  }
  const fh = await open(file, 'r');
  try {
    return await readExactly(fh, descriptor.size, descriptor.offset, `object ${descriptor.id}`, file);
  } finally {
    await fh.close();
  }
}
