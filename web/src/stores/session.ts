import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import { api } from '@/api/http';
import { ApiError } from '@/api/errors';
import type { Me, TokenPair } from '@/api/responses';
import type { Msg } from '@/i18n';
import { Scope } from '@/lib/scope';

const STORAGE_KEY = 'shouhu.session';

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

/**
 * The login session: tokens (kept per browser tab in sessionStorage, as before), the user, the
 * token refresh schedule, and the `scope` that owns every timer and connection of the session.
 * Logout — by the user or because the session cannot be renewed — ends the scope, so nothing of
 * the old session runs afterwards.
 */
export const useSession = defineStore('session', () => {
  const tokens = shallowRef<Tokens | null>(readStored());
  const me = ref<Me | null>(null);
  /** Why the user is on the login page (session expired…), shown there once. */
  const notice = ref<Msg | null>(null);
  let scope = new Scope();
  const scopeRef = shallowRef(scope);
  const endHandlers: (() => void)[] = [];

  const authenticated = computed(() => !!tokens.value && !!me.value);
  const role = computed(() => me.value?.role ?? null);

  function save(pair: TokenPair): void {
    tokens.value = { accessToken: pair.accessToken, refreshToken: pair.refreshToken, expiresAt: Date.now() + pair.expiresIn * 1000 };
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(tokens.value));
    scheduleRefresh();
  }

  let cancelRefreshTimer = (): void => undefined;
  /** Refresh at 80 % of the access token's life (the socket gets the new token by `reauth`). */
  function scheduleRefresh(): void {
    cancelRefreshTimer();
    if (!tokens.value) return;
    const ms = Math.max(5000, (tokens.value.expiresAt - Date.now()) * 0.8);
    cancelRefreshTimer = scope.timeout(() => void refresh(), ms);
  }

  const tokenListeners: ((token: string) => void)[] = [];
  /** Called with each new access token (the console socket re-authenticates with it). */
  function onNewToken(fn: (token: string) => void): void {
    tokenListeners.push(fn);
  }

  let refreshing: Promise<boolean> | null = null;
  /** One refresh at a time; false when the session cannot be renewed. */
  function refresh(): Promise<boolean> {
    const current = tokens.value;
    if (!current) return Promise.resolve(false);
    const mine = scope;
    refreshing ??= (async () => {
      try {
        const pair = await api.post('/api/v1/auth/refresh', { body: { refreshToken: current.refreshToken }, anonymous: true });
        if (mine.ended) return false;
        save(pair);
        for (const fn of tokenListeners) fn(pair.accessToken);
        return true;
      } catch (e) {
        // A network failure is not the end of the session: the next attempt may work.
        if (e instanceof ApiError && e.status === 0) return !!tokens.value && tokens.value.expiresAt > Date.now();
        return false;
      } finally {
        setTimeout(() => (refreshing = null), 0);
      }
    })();
    return refreshing;
  }

  api.setAuth({
    token: () => tokens.value?.accessToken ?? null,
    refresh: async () => {
      const ok = await refresh();
      if (!ok && tokens.value) expire();
      return ok;
    },
  });

  async function login(username: string, password: string): Promise<void> {
    const pair = await api.post('/api/v1/auth/login', { body: { username, password }, anonymous: true });
    newScope();
    notice.value = null;
    save(pair);
    me.value = await api.get('/api/v1/auth/me');
  }

  /** After a reload: the stored tokens, if they still work. */
  async function restore(): Promise<boolean> {
    if (!tokens.value) return false;
    if (me.value) return true;
    try {
      if (tokens.value.expiresAt <= Date.now() + 5000 && !(await refresh())) throw new ApiError(401, 'AUTH.TOKEN_EXPIRED', 'expired');
      scheduleRefresh();
      me.value = await api.get('/api/v1/auth/me');
      return true;
    } catch (e) {
      end(e instanceof ApiError && e.status === 401 ? { key: 'login.expired' } : null);
      return false;
    }
  }

  function newScope(): void {
    scope.end();
    scope = new Scope();
    scopeRef.value = scope;
  }

  /** Runs when the session ends (logout or expiry): stores reset themselves here. */
  function onEnd(fn: () => void): void {
    endHandlers.push(fn);
  }

  function end(message: Msg | null): void {
    cancelRefreshTimer();
    scope.end();
    scope = new Scope();
    scopeRef.value = scope;
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

  /** The session could not be renewed (only while one is active: a finished session never "expires"). */
  function expire(): void {
    if (tokens.value) end({ key: 'login.expired' });
  }

  return { tokens, me, role, notice, authenticated, scope: scopeRef, login, restore, logout, expire, refresh, onEnd, onNewToken };
});
