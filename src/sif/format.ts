/**
 * The SIF on-disk format (sylabs/sif v2 `pkg/sif/sif.go`, `descriptor.go`): little-endian packed
 * structs, a 128-byte global header and, at `descriptorsOffset`, `descriptorsTotal` descriptors
 * of 585 bytes each (unused slots have `used` = 0).
 *
 *   header:     0 launch[32], 32 magic[10] "SIF_MAGIC\0", 42 version[3] "01\0", 45 arch[3],
 *               48 id[16] (UUID), 64 createdAt, 72 modifiedAt, 80 descriptorsFree,
 *               88 descriptorsTotal, 96 descriptorsOffset, 104 descriptorsSize, 112 dataOffset,
 *               120 dataSize (all int64)
 *   descriptor: 0 dataType i32, 4 used u8, 5 id u32, 9 groupId u32, 13 linkedId u32,
 *               17 offset, 25 size, 33 sizeWithPadding, 41 createdAt, 49 modifiedAt, 57 uid,
 *               65 gid (int64), 73 name[128], 201 extra[384]
 *   partition extra: 0 fsType i32, 4 partType i32, 8 arch[3]
 */

export const HEADER_BYTES = 128;
export const DESCRIPTOR_BYTES = 585;
export const SIF_MAGIC = 'SIF_MAGIC\0';
export const SIF_VERSION = '01';
export const LAUNCH_BYTES = 32;
/** Group and link ids carry this mask; a link with it names a group, not an object. */
export const GROUP_MASK = 0xf0000000;

export const H = {
  launch: 0,
  magic: 32,
  version: 42,
  arch: 45,
  id: 48,
  createdAt: 64,
  modifiedAt: 72,
  descriptorsFree: 80,
  descriptorsTotal: 88,
  descriptorsOffset: 96,
  descriptorsSize: 104,
  dataOffset: 112,
  dataSize: 120,
} as const;

export const D = {
  dataType: 0,
  used: 4,
  id: 5,
  groupId: 9,
  linkedId: 13,
  offset: 17,
  size: 25,
  sizeWithPadding: 33,
  createdAt: 41,
  modifiedAt: 49,
  name: 73,
  nameBytes: 128,
  extra: 201,
} as const;

export const DataType = {
  deffile: 0x4001,
  envVar: 0x4002,
  labels: 0x4003,
  partition: 0x4004,
  signature: 0x4005,
  genericJson: 0x4006,
  generic: 0x4007,
  cryptoMessage: 0x4008,
  sbom: 0x4009,
  ociBlob: 0x400a,
  ociImageIndex: 0x400b,
} as const;

/** siftool's names for the data types. */
export const DATA_TYPE_NAMES: Readonly<Record<number, string>> = {
  [DataType.deffile]: 'Def.FILE',
  [DataType.envVar]: 'Env.Vars',
  [DataType.labels]: 'JSON.Labels',
  [DataType.partition]: 'FS',
  [DataType.signature]: 'Signature',
  [DataType.genericJson]: 'JSON.Generic',
  [DataType.generic]: 'Generic/Raw',
  [DataType.cryptoMessage]: 'Cryptographic Message',
  [DataType.sbom]: 'SBOM',
  [DataType.ociBlob]: 'OCI.Blob',
  [DataType.ociImageIndex]: 'OCI.ImageIndex',
};

export const FsType = { squash: 1, ext3: 2, immuObj: 3, raw: 4, encryptedSquashfs: 5 } as const;
export const FS_TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'Squashfs',
  2: 'Ext3',
  3: 'Archive',
  4: 'Raw',
  5: 'Encrypted squashfs',
};

export const PartType = { system: 1, primSys: 2, data: 3, overlay: 4 } as const;
export const PART_TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'System',
  2: '*System',
  3: 'Data',
  4: 'Overlay',
};

/** Header/partition arch codes → Go architecture names (as siftool prints them). */
export const ARCH_NAMES: Readonly<Record<string, string>> = {
  '01': '386',
  '02': 'amd64',
  '03': 'arm',
  '04': 'arm64',
  '05': 'ppc64',
  '06': 'ppc64le',
  '07': 'mips',
  '08': 'mipsle',
  '09': 'mips64',
  '10': 'mips64le',
  '11': 's390x',
  '12': 'riscv64',
};
