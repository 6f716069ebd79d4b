import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import { ApiError } from '@/api/errors';
import { api, type RefreshResult } from '@/api/http';
import type { Me, TokenPair } from '@/api/responses';
import type { Msg } from '@/i18n';
import { Scope } from '@/lib/scope';

const STORAGE_KEY = 'shouhu.session';
/** After a refresh that could not reach a working server: try again this much later. */
const REFRESH_RETRY_MS = 5000;

interface Tokens {
  accessToken: string;
  refreshToken: string;
  /** ms since epoch. */
  expiresAt: number;
}

function readStored(): Tokens | null {
  try {
    const t = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null') as Tokens | null;
    return t && typeof t.accessToken === 'string' && typeof t.refreshToken === 'string' && typeof t.expiresAt === 'number' ? t : null;
  } catch {
    return null;
  }
}

/** A refresh refused by the server (401) ends the session; a server that cannot answer now (network, 5xx) does not. */
const isTransient = (e: unknown) => !(e instanceof ApiError) || e.status === 0 || e.status >= 500 || e.status === 429;

/**
 * The login session: tokens (kept per browser tab in sessionStorage, as before), the user, the
 * token refresh schedule, and the `scope` that owns every timer and connection of the session.
 * Logout — by the user, or because the server refuses to renew the session — ends the scope, so
 * nothing of the old session runs afterwards. A server that cannot be reached or answers 5xx
 * (Postgres down) never logs the operator out: renewal is retried until it works or is refused.
 */
export const useSession = defineStore('session', () => {
  const tokens = shallowRef<Tokens | null>(readStored());
  const me = ref<Me | null>(null);
  /** Why the user is on the login page (session expired, server unavailable…), shown there. */
  const notice = ref<Msg | null>(null);
  let scope = new Scope();
  const scopeRef = shallowRef(scope);
  const endHandlers: (() => void)[] = [];
  const tokenListeners: ((token: string) => void)[] = [];

  const authenticated = computed(() => !!tokens.value && !!me.value);
  const role = computed(() => me.value?.role ?? null);

  function save(pair: TokenPair): void {
    tokens.value = { accessToken: pair.accessToken, refreshToken: pair.refreshToken, expiresAt: Date.now() + pair.expiresIn * 1000 };
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(tokens.value));
    scheduleRefresh();
  }

  let cancelRefreshTimer = (): void => undefined;
  /** Refresh at 80 % of the access token's life (the socket gets the new token by `reauth`). */
  function scheduleRefresh(ms?: number): void {
    cancelRefreshTimer();
    if (!tokens.value) return;
    const delay = ms ?? Math.max(5000, (tokens.value.expiresAt - Date.now()) * 0.8);
    cancelRefreshTimer = scope.timeout(() => {
      void refresh().then((r) => {
        if (r === 'invalid') expire();
        else if (r === 'unavailable') scheduleRefresh(REFRESH_RETRY_MS);
      });
    }, delay);
  }

  /** Called with each new access token (the console socket re-authenticates with it). */
  function onNewToken(fn: (token: string) => void): void {
    tokenListeners.push(fn);
  }

  let refreshing: Promise<RefreshResult> | null = null;
  /** One refresh at a time. 'invalid': the server refused (the session is over); 'unavailable': try later. */
  function refresh(): Promise<RefreshResult> {
    const current = tokens.value;
    if (!current) return Promise.resolve('invalid');
    const mine = scope;
    refreshing ??= (async (): Promise<RefreshResult> => {
      try {
        const pair = await api.post('/api/v1/auth/refresh', { body: { refreshToken: current.refreshToken }, anonymous: true });
        if (mine.ended) return 'invalid';
        save(pair);
        for (const fn of tokenListeners) fn(pair.accessToken);
        return 'ok';
      } catch (e) {
        return isTransient(e) ? 'unavailable' : 'invalid';
      } finally {
        setTimeout(() => (refreshing = null), 0);
      }
    })();
    return refreshing;
  }

  api.setAuth({
    token: () => tokens.value?.accessToken ?? null,
    refresh: async () => {
      const r = await refresh();
      if (r === 'invalid') expire();
      return r;
    },
  });

  async function login(username: string, password: string): Promise<void> {
    const pair = await api.post('/api/v1/auth/login', { body: { username, password }, anonymous: true });
    newScope();
    notice.value = null;
    save(pair);
    me.value = pair.user ?? (await api.get('/api/v1/auth/me'));
  }

  /**
   * After a reload: the stored tokens, if they still work. A server that cannot answer now keeps
   * them (the login page offers to retry); a refusal ends the session.
   */
  async function restore(): Promise<boolean> {
    if (!tokens.value) return false;
    if (me.value) return true;
    try {
      if (tokens.value.expiresAt <= Date.now() + 5000) {
        const r = await refresh();
        if (r !== 'ok') throw r === 'invalid' ? new ApiError(401, 'AUTH.TOKEN_EXPIRED', 'expired') : new ApiError(503, 'UNAVAILABLE', 'unavailable');
      }
      me.value = await api.get('/api/v1/auth/me');
      scheduleRefresh();
      notice.value = null;
      return true;
    } catch (e) {
      if (isTransient(e)) notice.value = { key: 'errors.unavailable' };
      else end({ key: 'login.expired' });
      return false;
    }
  }

  function newScope(): void {
    scope.end();
    scope = new Scope();
    scopeRef.value = scope;
  }

  /** Runs when the session ends (logout or refusal): stores reset themselves here. */
  function onEnd(fn: () => void): void {
    endHandlers.push(fn);
  }

  function end(message: Msg | null): void {
    cancelRefreshTimer();
    newScope();
    tokens.value = null;
    me.value = null;
    sessionStorage.removeItem(STORAGE_KEY);
    notice.value = message;
    for (const fn of endHandlers) fn();
  }

  /** The user logs out: the server revokes the tokens (best effort), everything of the session stops. */
  function logout(): void {
    const t = tokens.value;
    if (t) {
      void fetch('/api/v1/auth/logout', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${t.accessToken}` },
        body: JSON.stringify({ refreshToken: t.refreshToken }),
        signal: AbortSignal.timeout(5000),
      }).catch(() => undefined);
    }
    end(null);
  }

  /** The server refused to renew the session (only while one is active: a finished session never "expires"). */
  function expire(): void {
    if (tokens.value) end({ key: 'login.expired' });
  }

  return { tokens, me, role, notice, authenticated, scope: scopeRef, login, restore, logout, expire, refresh, onEnd, onNewToken };
});
