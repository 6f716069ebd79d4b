/**
 * Browser tests (test/browser) set `window.__SHOUHU_TEST__ = true` before the page loads; only
 * then does the app expose read-only state for them (`window.__consoleState`, merged from the
 * parts the mounted surfaces register) and a few drills (`window.__consoleTest`). Nothing is
 * exposed otherwise.
 */
declare global {
  interface Window {
    __SHOUHU_TEST__?: boolean;
    __consoleState?: unknown;
    __consoleTest?: Record<string, () => unknown>;
  }
}

export const testHooksEnabled = typeof window !== 'undefined' && window.__SHOUHU_TEST__ === true;

const parts = new Map<string, () => Record<string, unknown>>();
let defined = false;

/** Registers a part of `window.__consoleState` (read afresh on each access); returns its removal. */
export function exposeState(name: string, read: () => Record<string, unknown>): () => void {
  if (!testHooksEnabled) return () => undefined;
  parts.set(name, read);
  if (!defined) {
    defined = true;
    Object.defineProperty(window, '__consoleState', {
      configurable: true,
      get: () => JSON.parse(JSON.stringify(Object.assign({}, ...[...parts.values()].map((f) => f())))) as unknown,
    });
  }
  return () => parts.delete(name);
}

export function exposeDrills(drills: Record<string, () => unknown>): void {
  if (!testHooksEnabled) return;
  window.__consoleTest = { ...(window.__consoleTest ?? {}), ...drills };
}
