/**
 * The account and the app: users/* (one basic account; other account ids do not exist),
 * check/user and check/app (echo), auth/token/revoke.
 */
import { apiError, type Json } from '../errors.js';
import type { RouteTable, State } from './types.js';

function name(state: State): Json {
  const { displayName } = state.account;
  const [given, ...rest] = displayName.split(' ');
  return {
    given_name: given ?? displayName,
    surname: rest.join(' '),
    familiar_name: given ?? displayName,
    display_name: displayName,
    abbreviated_name: displayName.split(' ').map((w) => w[0] ?? '').join('').toUpperCase(),
  };
}

/** BasicAccount of the one account (the only id `get_account` knows). */
function basicAccount(state: State): Json {
  const { accountId, email } = state.account;
  return { account_id: accountId, name: name(state), email, email_verified: true, disabled: false, is_teammate: false };
}

export const accountRoutes: RouteTable = {
  'users/get_current_account': {
    handle(state) {
      const { accountId, email } = state.account;
      return {
        account_id: accountId,
        name: name(state),
        email,
        email_verified: true,
        disabled: false,
        locale: 'en',
        referral_link: 'https://www.dropbox.com/referrals/sreg-emulator',
        is_paired: false,
        account_type: { '.tag': 'basic' },
        root_info: { '.tag': 'user', root_namespace_id: '3235641', home_namespace_id: '3235641' },
        country: 'US',
      };
    },
  },
  'users/get_space_usage': {
    handle(state) {
      return { used: state.ns.usedBytes(), allocation: { '.tag': 'individual', allocated: state.quotaBytes } };
    },
  },
  'users/get_account': {
    handle(state, _ctx, arg: { account_id: string }) {
      if (arg.account_id !== state.account.accountId) throw apiError({ '.tag': 'no_account' });
      return basicAccount(state);
    },
  },
  'users/get_account_batch': {
    handle(state, _ctx, arg: { account_ids: string[] }) {
      const unknown = arg.account_ids.find((id) => id !== state.account.accountId);
      if (unknown !== undefined) throw apiError({ '.tag': 'no_account', no_account: unknown });
      return arg.account_ids.map(() => basicAccount(state));
    },
  },
  'users/features/get_values': {
    handle(_state, _ctx, arg: { features: { '.tag': string }[] }) {
      // A basic account: none of these features is on.
      return { values: arg.features.map((f) => (f['.tag'] === 'other' ? { '.tag': 'other' } : { '.tag': f['.tag'], [f['.tag']]: { '.tag': 'enabled', enabled: false } })) };
    },
  },
  'check/user': {
    handle(_state, _ctx, arg: { query: string }) {
      return { result: arg.query };
    },
  },
  'check/app': {
    handle(_state, _ctx, arg: { query: string }) {
      return { result: arg.query };
    },
  },
  'auth/token/revoke': {
    handle(state, ctx) {
      state.auth.revoke(ctx.tokenSha);
      return null;
    },
  },
};

