/**
 * `singularity inspect`'s attributes of an image — what sregistry stores as
 * `metrics.data.attributes` — read without Singularity: the SIF's definition-file and labels
 * objects, and the `/.singularity.d` scripts from its squashfs system partition.
 *
 * Also reads pre-SIF squashfs images (Singularity 2.4–2.6 `.simg`): a squashfs at byte 0, or
 * after a `#!/usr/bin/env run-singularity` launch line.
 */
import { open } from 'node:fs/promises';
import { SifError } from './errors.js';
import { DataType, FsType } from './format.js';
import { primaryPartition, readDescriptorData, readSifFrom, type SifInfo } from './header.js';
import { catSquashfsFile } from './squashfs.js';

export interface InspectAttributes {
  deffile: string | null;
  environment: string | null;
  help: string | null;
  labels: Record<string, unknown> | null;
  runscript: string | null;
  test: string | null;
}

/** Where Singularity keeps each attribute inside the container. */
export const SINGULARITY_PATHS = {
  deffile: '/.singularity.d/Singularity',
  environment: '/.singularity.d/env/90-environment.sh',
  help: '/.singularity.d/runscript.help',
  labels: '/.singularity.d/labels.json',
  runscript: '/.singularity.d/runscript',
  test: '/.singularity.d/test',
} as const;

const SQUASHFS_MAGIC = 'hsqs';
const LEGACY_LAUNCH = '#!/usr/bin/env run-singularity\n';

/** Where the squashfs root file system starts in the image, and the SIF's header if it is one. */
async function locateRootfs(file: string): Promise<{ offset: number; sif?: SifInfo }> {
  const fh = await open(file, 'r');
  try {
    let sif: SifInfo | undefined;
    try {
      sif = await readSifFrom(fh, file);
    } catch (err) {
      if (!(err instanceof SifError && err.code === 'not_sif')) throw err;
    }
    if (sif) {
      const part = primaryPartition(sif);
      if (!part) throw new SifError('unsupported', `${file}: the SIF has no primary system partition`);
      if (part.fsType !== FsType.squash) {
        throw new SifError('unsupported', `${file}: the primary partition is ${part.fsTypeName}, not squashfs`);
      }
      return { offset: part.offset, sif };
    }
    const head = Buffer.alloc(LEGACY_LAUNCH.length + SQUASHFS_MAGIC.length);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const text = head.toString('latin1', 0, bytesRead);
    if (text.startsWith(SQUASHFS_MAGIC)) return { offset: 0 };
    if (text === LEGACY_LAUNCH + SQUASHFS_MAGIC) return { offset: LEGACY_LAUNCH.length };
    throw new SifError('not_sif', `${file} is neither a SIF image nor a squashfs image`);
  } finally {
    await fh.close();
  }
}

const text = (b: Buffer | null): string | null => (b === null ? null : new TextDecoder('utf-8').decode(b));

function parseLabels(raw: string | null): Record<string, unknown> | null {
  if (raw === null) return null;
  try {
    const v = JSON.parse(raw) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The SIF object of `dataType` as text (the first such object), or null. */
async function sifObject(file: string, sif: SifInfo | undefined, dataType: number): Promise<string | null> {
  const d = sif?.descriptors.find((x) => x.dataType === dataType);
  return d ? text(await readDescriptorData(file, d)) : null;
}

/**
 * `{deffile, environment, help, labels, runscript, test}`; an attribute the image does not have
 * is null. The definition file and labels come from the SIF's own objects when it has them,
 * else from `/.singularity.d`. Runs up to six `unsquashfs` processes at once.
 * @throws SifError (`not_sif`, `corrupt`, `unsupported`, `too_large`, `tool_failed`).
 */
export async function inspectImage(file: string): Promise<InspectAttributes> {
  const { offset, sif } = await locateRootfs(file);
  const cat = async (p: string): Promise<string | null> => text(await catSquashfsFile(file, offset, p));
  const [deffileObject, labelsObject] = await Promise.all([
    sifObject(file, sif, DataType.deffile),
    sifObject(file, sif, DataType.labels),
  ]);
  const [deffile, environment, help, labels, runscript, test] = await Promise.all([
    deffileObject ?? cat(SINGULARITY_PATHS.deffile),
    cat(SINGULARITY_PATHS.environment),
    cat(SINGULARITY_PATHS.help),
    labelsObject ?? cat(SINGULARITY_PATHS.labels),
    cat(SINGULARITY_PATHS.runscript),
    cat(SINGULARITY_PATHS.test),
  ]);
  return { deffile, environment, help, labels: parseLabels(labels), runscript, test };
}
