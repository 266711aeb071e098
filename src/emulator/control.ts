/**
 * What tests and benchmarks change while the emulator runs (the admin API under
 * `/__emulator/`): shaping (latency, per-connection bandwidth, token TTL, longpoll limits,
 * a clock offset), fault rules, and traffic counters.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { HttpError, apiError, authError, rateLimited, type RateLimitReason } from './errors.js';

export interface Shaping {
  latencyMs: number;
  /** 0 = unlimited */
  bandwidthBytesPerSec: number;
  tokenTtlSec: number;
  longpollMaxWaitSec: number;
  longpollBackoffSec: number;
  clockOffsetSec: number;
}

export type FaultKind = '5xx' | '429' | 'write_lock_409' | 'cut' | 'expire_token' | 'stall';

export interface FaultRule {
  id: number;
  kind: FaultKind;
  routes?: string[];
  count?: number;
  rate?: number;
  status?: number;
  reason?: RateLimitReason;
  retryAfterSec?: number;
  plainText?: boolean;
  afterBytes?: number;
  fired: number;
}

/** Routes whose 409 union has `too_many_write_operations`, and how it is wrapped there. */
const WRITE_LOCK_ERRORS: Record<string, () => HttpError> = {
  'files/upload': () =>
    apiError({ '.tag': 'path', reason: { '.tag': 'too_many_write_operations' }, upload_session_id: '' }),
  'files/upload_session/finish': () => apiError({ '.tag': 'too_many_write_operations' }),
  'files/delete_v2': () => apiError({ '.tag': 'too_many_write_operations' }),
  'files/move_v2': () => apiError({ '.tag': 'to', to: { '.tag': 'too_many_write_operations' } }),
  'files/copy_v2': () => apiError({ '.tag': 'to', to: { '.tag': 'too_many_write_operations' } }),
  'files/create_folder_v2': () => apiError({ '.tag': 'path', path: { '.tag': 'too_many_write_operations' } }),
};

const KINDS = new Set<FaultKind>(['5xx', '429', 'write_lock_409', 'cut', 'expire_token', 'stall']);

export class Control {
  readonly shaping: Shaping;
  private rules: FaultRule[] = [];
  private nextRuleId = 1;
  stats = freshStats();

  constructor(initial: Shaping) {
    this.shaping = { ...initial };
  }

  nowMs(): number {
    return Date.now() + this.shaping.clockOffsetSec * 1000;
  }

  setShaping(patch: unknown): Shaping {
    if (!patch || typeof patch !== 'object') throw new Error('config must be a JSON object');
    for (const [k, v] of Object.entries(patch)) {
      if (!(k in this.shaping)) throw new Error(`unknown config field '${k}'`);
      if (typeof v !== 'number' || !Number.isFinite(v) || (v < 0 && k !== 'clockOffsetSec')) {
        throw new Error(`config field '${k}' must be a number ≥ 0`);
      }
      (this.shaping as unknown as Record<string, number>)[k] = v;
    }
    return { ...this.shaping };
  }

  addRule(body: unknown): FaultRule {
    if (!body || typeof body !== 'object') throw new Error('a fault rule is a JSON object');
    const r = body as Partial<FaultRule>;
    if (!r.kind || !KINDS.has(r.kind)) throw new Error(`fault kind must be one of ${[...KINDS].join(', ')}`);
    if (r.rate !== undefined && !(r.rate >= 0 && r.rate <= 1)) throw new Error('rate must be between 0 and 1');
    if (r.count !== undefined && !(Number.isInteger(r.count) && r.count > 0)) throw new Error('count must be a positive integer');
    if (r.status !== undefined && !(r.status >= 500 && r.status <= 599)) throw new Error('status must be 5xx');
    if (r.reason !== undefined && r.reason !== 'too_many_requests' && r.reason !== 'too_many_write_operations')
      throw new Error('reason must be too_many_requests or too_many_write_operations');
    if (r.afterBytes !== undefined && !(Number.isInteger(r.afterBytes) && r.afterBytes >= -1)) throw new Error('afterBytes must be a whole number ≥ 0 (or -1: half the body)');
    const rule: FaultRule = { ...r, kind: r.kind, id: this.nextRuleId++, fired: 0 };
    this.rules.push(rule);
    return rule;
  }

  listRules(): FaultRule[] {
    return this.rules.map((r) => ({ ...r }));
  }

  removeRule(id?: number): void {
    this.rules = id === undefined ? [] : this.rules.filter((r) => r.id !== id);
  }

  /**
   * The fault to apply to this request, if any. Error faults come back as an HttpError to
   * send instead of the answer; `cut` comes back as a byte count after which to drop; `stall`
   * as `stallAnswer` (never answer) or a byte count of the body after which to stop sending.
   */
  pickFault(route: string): { error?: HttpError; cutAfterBytes?: number; stallAnswer?: boolean; stallAfterBytes?: number } {
    for (const rule of this.rules) {
      if (rule.routes && !rule.routes.includes(route)) continue;
      if (rule.kind === 'write_lock_409' && !(route in WRITE_LOCK_ERRORS)) continue;
      if (rule.count !== undefined && rule.fired >= rule.count) continue;
      if (rule.rate !== undefined && Math.random() >= rule.rate) continue;
      rule.fired++;
      switch (rule.kind) {
        case '5xx': {
          const status = rule.status ?? 503;
          return { error: new HttpError(status, `Injected ${status} (sreg emulator fault rule ${rule.id})`) };
        }
        case '429':
          return { error: rateLimited(rule.reason ?? 'too_many_requests', rule.retryAfterSec ?? 1, rule.plainText) };
        case 'write_lock_409': {
          const e = WRITE_LOCK_ERRORS[route]!();
          return { error: new HttpError(e.status, e.body, { 'retry-after': String(rule.retryAfterSec ?? 1) }) };
        }
        case 'expire_token':
          return { error: authError('expired_access_token') };
        case 'cut':
          return { cutAfterBytes: rule.afterBytes ?? -1 };
        case 'stall':
          return rule.afterBytes === undefined ? { stallAnswer: true } : { stallAfterBytes: rule.afterBytes };
      }
    }
    return {};
  }

  countRequest(route: string): void {
    this.stats.requests[route] = (this.stats.requests[route] ?? 0) + 1;
  }

  countStatus(status: number): void {
    this.stats.statuses[status] = (this.stats.statuses[status] ?? 0) + 1;
  }

  resetStats(): void {
    this.stats = freshStats();
  }
}

function freshStats(): { bytesSent: number; bytesReceived: number; requests: Record<string, number>; statuses: Record<string, number> } {
  return { bytesSent: 0, bytesReceived: 0, requests: {}, statuses: {} };
}

/**
 * Paces a byte stream to `bytesPerSec`, measured from its first byte: after n bytes it waits
 * until n / rate seconds have passed, so the average stays within a few percent of the rate.
 */
export class Pacer {
  private readonly startMs = performance.now();
  private bytes = 0;

  constructor(private readonly bytesPerSec: number) {}

  async take(n: number): Promise<void> {
    if (this.bytesPerSec <= 0) return;
    this.bytes += n;
    const dueMs = this.startMs + (this.bytes / this.bytesPerSec) * 1000;
    const waitMs = dueMs - performance.now();
    if (waitMs > 1) await sleep(waitMs);
  }
}

export { parseBytes } from '../util/bytes.js';
