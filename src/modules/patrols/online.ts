/**
 * Online time of a device over a window, from its current status and the status transitions
 * recorded since the window started (device-health writes one row per change, none per
 * heartbeat). Pure.
 */
export interface StatusChange {
  from: string;
  to: string;
  at: Date;
}

/**
 * `changes`: this device's transitions, oldest first; those before `start` are ignored, the
 * first one at or after `start` tells the state at `start` (its `from`). Without any, the current status has held
 * since before the window. A zero-length window reports the state at that instant.
 */
export function onlineWithin(currentStatus: string, changes: StatusChange[], start: Date, end: Date): { onlineMs: number; windowMs: number; onlineThroughout: boolean } {
  changes = changes.filter((c) => new Date(c.at).getTime() >= start.getTime());
  let state = changes.length ? changes[0].from : currentStatus;
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
