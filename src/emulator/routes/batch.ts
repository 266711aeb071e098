/**
 * Batch routes: delete_batch, copy_batch(_v2), move_batch(_v2), create_folder_batch, each
 * launched as an async job (as Dropbox usually answers) whose result the matching `check`
 * route returns. The work is done at launch, entry by entry in order, through the single
 * routes' code, so each entry succeeds or fails exactly as the single call would.
 * Job results live in memory for the emulator's lifetime (a restart forgets them: a check of
 * an old job id is `invalid_async_job_id`).
 */
import { randomBytes } from 'node:crypto';
import type { RequestContext } from '../context.js';
import { apiError, HttpError, type Json } from '../errors.js';
import { fileRoutes } from './files.js';
import type { RouteTable, State } from './types.js';

const jobs = new Map<string, { kind: string; result: Json }>();

/** Stores a finished job and answers its launch: `{".tag": "async_job_id", ...}`. */
export function launchJob(kind: string, result: Json): Json {
  const id = `dbjid:${randomBytes(24).toString('base64url')}`;
  jobs.set(id, { kind, result });
  return { '.tag': 'async_job_id', async_job_id: id };
}

/** The `complete` status of a finished job of this kind (the result struct inlined). */
export function checkJob(kind: string, id: string): Json {
  const job = jobs.get(id);
  if (!job || job.kind !== kind) throw apiError({ '.tag': 'invalid_async_job_id' });
  return { '.tag': 'complete', ...(job.result as object) };
}

/** Runs one entry through a single route: its result, or the 409 error union it raised. */
async function one(route: string, state: State, ctx: RequestContext, arg: unknown): Promise<{ ok: Json } | { error: Json }> {
  try {
    return { ok: (await fileRoutes[route]!.handle(state, ctx, arg as never)) ?? null };
  } catch (e) {
    if (e instanceof HttpError && e.status === 409) return { error: (e.body as { error: Json }).error };
    throw e;
  }
}

interface RelocationPath {
  from_path: string;
  to_path: string;
}
type RelocationBatch = { entries: RelocationPath[]; autorename: boolean; allow_ownership_transfer?: boolean };

/** v2: each entry success (the Metadata, nested) or failure (the RelocationError, nested). */
function relocationV2(route: 'files/copy_v2' | 'files/move_v2', kind: string): RouteTable[string] {
  return {
    async handle(state, ctx, arg: RelocationBatch) {
      const entries: Json[] = [];
      for (const e of arg.entries) {
        const r = await one(route, state, ctx, { ...e, autorename: arg.autorename, allow_shared_folder: false, allow_ownership_transfer: false });
        entries.push(
          'ok' in r
            ? { '.tag': 'success', success: (r.ok as { metadata: Json }).metadata }
            : { '.tag': 'failure', failure: { '.tag': 'relocation_error', relocation_error: r.error } },
        );
      }
      return launchJob(kind, { entries });
    },
  };
}

/** v1: all or nothing for the caller: the first failure is the job's `failed` status. */
function relocationV1(route: 'files/copy_v2' | 'files/move_v2', kind: string): RouteTable[string] {
  return {
    async handle(state, ctx, arg: RelocationBatch) {
      const entries: Json[] = [];
      for (const e of arg.entries) {
        const r = await one(route, state, ctx, { ...e, autorename: arg.autorename, allow_shared_folder: false, allow_ownership_transfer: false });
        if ('error' in r) {
          const id = `dbjid:${randomBytes(24).toString('base64url')}`;
          jobs.set(id, { kind: `${kind}:failed`, result: r.error });
          return { '.tag': 'async_job_id', async_job_id: id };
        }
        entries.push({ metadata: (r.ok as { metadata: Json }).metadata });
      }
      return launchJob(kind, { entries });
    },
  };
}

function checkV1(kind: string): RouteTable[string] {
  return {
    handle(_state, _ctx, arg: { async_job_id: string }) {
      const failed = jobs.get(arg.async_job_id);
      if (failed?.kind === `${kind}:failed`) return { '.tag': 'failed', failed: failed.result };
      return checkJob(kind, arg.async_job_id);
    },
  };
}

const check = (kind: string): RouteTable[string] => ({
  handle: (_state, _ctx, arg: { async_job_id: string }) => checkJob(kind, arg.async_job_id),
});

export const batchRoutes: RouteTable = {
  'files/delete_batch': {
    async handle(state, ctx, arg: { entries: { path: string; parent_rev?: string }[] }) {
      const entries: Json[] = [];
      for (const e of arg.entries) {
        const r = await one('files/delete_v2', state, ctx, e);
        entries.push('ok' in r ? { '.tag': 'success', ...(r.ok as object) } : { '.tag': 'failure', failure: r.error });
      }
      return launchJob('delete', { entries });
    },
  },
  'files/delete_batch/check': check('delete'),
  'files/copy_batch_v2': relocationV2('files/copy_v2', 'copy_v2'),
  'files/copy_batch/check_v2': check('copy_v2'),
  'files/move_batch_v2': relocationV2('files/move_v2', 'move_v2'),
  'files/move_batch/check_v2': check('move_v2'),
  'files/copy_batch': relocationV1('files/copy_v2', 'copy_v1'),
  'files/copy_batch/check': checkV1('copy_v1'),
  'files/move_batch': relocationV1('files/move_v2', 'move_v1'),
  'files/move_batch/check': checkV1('move_v1'),
  'files/create_folder_batch': {
    async handle(state, ctx, arg: { paths: string[]; autorename: boolean; force_async: boolean }) {
      const entries: Json[] = [];
      for (const p of arg.paths) {
        const r = await one('files/create_folder_v2', state, ctx, { path: p, autorename: arg.autorename });
        entries.push('ok' in r ? { '.tag': 'success', ...(r.ok as object) } : { '.tag': 'failure', failure: r.error });
      }
      // Small batches complete at once unless the caller asks for a job.
      return arg.force_async ? launchJob('create_folder', { entries }) : { '.tag': 'complete', entries };
    },
  },
  'files/create_folder_batch/check': check('create_folder'),
};
