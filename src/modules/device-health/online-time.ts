/**
 * Online time of a device over a window, reconstructed from status transitions (device-health
 * writes one row per change, in the same transaction as the registry's status, never one per
 * heartbeat). Pure; the only place online time is computed (OnlineTimeService loads the rows).
 *
 * The state of a device at an instant T is the `from` of its first transition at or after T, or,
 * when it has none, the status it has after its last known transition (its current status when
 * the transitions run up to now). This needs no history before T: a device registered or
 * imported with a status, or whose older transitions are gone, is still judged right.
 */
export interface StatusChange {
  from: string;
  to: string;
  at: Date;
}

export interface OnlineWithin {
  /** Milliseconds online inside [start, end). */
  onlineMs: number;
  /** end − start in milliseconds (0 when end ≤ start). */
  windowMs: number;
  /** Online at start and never anything else before end; for a zero-length window, online at that instant. */
  onlineThroughout: boolean;
}

/**
 * `changes`: this device's transitions, oldest first, running up to the instant `statusAfter`
 * holds (now, for the current status); those before `start` are ignored, the first one at or
 * after `start` tells the state at `start` (its `from`). A status other than 'online' (offline,
 * unknown, fault) counts as not online.
 */
export function onlineWithin(statusAfter: string, changes: StatusChange[], start: Date, end: Date): OnlineWithin {
  changes = changes.filter((c) => new Date(c.at).getTime() >= start.getTime());
  let state = changes.length ? changes[0].from : statusAfter;
  let t = start.getTime();
  const e = end.getTime();
  let online = 0;
  let throughout = state === 'online';
  for (const c of changes) {
    const at = new Date(c.at).getTime();
    if (at >= e) break;
    if (state === 'online') online += at - t;
    t = Math.max(t, at);
    state = c.to;
    if (state !== 'online') throughout = false;
  }
  if (state === 'online') online += Math.max(0, e - t);
  return { onlineMs: online, windowMs: Math.max(0, e - start.getTime()), onlineThroughout: throughout };
}

/** Groups transitions by device (input oldest first, so each list stays oldest first). */
export function changesByDevice<T extends StatusChange & { deviceId: string }>(rows: T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const r of rows) (out.get(r.deviceId) ?? out.set(r.deviceId, []).get(r.deviceId)!).push(r);
  return out;
}

/** Intervals ([start, end) in ms) minus holes, e.g. school hours minus maintenance windows. */
export function subtractIntervals(base: [number, number][], holes: [number, number][]): [number, number][] {
  let out = base;
  for (const [hs, he] of holes) {
    const next: [number, number][] = [];
    for (const [s, e] of out) {
      if (he <= s || hs >= e) next.push([s, e]);
      else {
        if (hs > s) next.push([s, hs]);
        if (he < e) next.push([he, e]);
      }
    }
    out = next;
  }
  return out;
}

/**
 * The window a day's online time is counted over, as of `asOf`: school hours up to `asOf`; before
 * school hours have begun, or on a day without school (`hours` null), the zero-length window at
 * `asOf` (whose verdict is the state at that instant).
 */
export function countedWindow(hours: { start: Date; end: Date } | null, asOf: Date): { start: Date; end: Date } {
  if (!hours || asOf.getTime() <= hours.start.getTime()) return { start: asOf, end: asOf };
  return { start: hours.start, end: new Date(Math.max(hours.start.getTime(), Math.min(asOf.getTime(), hours.end.getTime()))) };
}
