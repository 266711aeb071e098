/**
 * SREG_SAFETY_TIMEOUT_MS (app/fuse-adapter.ts): unset or empty keeps the adapters' default
 * (10 minutes); a whole number of milliseconds above 0 is passed on; anything else is refused
 * before mounting, naming the variable.
 */
import test from 'ava';
import { safetyTimeoutMs } from '../../src/app/fuse-adapter.js';
import { UsageError } from '../../src/registry/errors.js';

test('SREG_SAFETY_TIMEOUT_MS: unset or empty is the default, a whole number of ms is taken, anything else is a usage error', (t) => {
  t.deepEqual(safetyTimeoutMs({}), {});
  t.deepEqual(safetyTimeoutMs({ SREG_SAFETY_TIMEOUT_MS: '' }), {});
  t.deepEqual(safetyTimeoutMs({ SREG_SAFETY_TIMEOUT_MS: '1500' }), { safetyTimeoutMs: 1500 });
  for (const bad of ['0', '-5', '1.5', 'soon', '1e400']) {
    const e = t.throws(() => safetyTimeoutMs({ SREG_SAFETY_TIMEOUT_MS: bad }), { instanceOf: UsageError });
    t.regex(e.message, /^SREG_SAFETY_TIMEOUT_MS: /);
  }
});
