import { CODE_PATTERN } from '../registry';
import { LivenessIndex } from './liveness-index';

export type RejectReason = 'malformed' | 'unknown_device' | 'out_of_scope';

/** An entry of a gateway's batch that was not accepted, by its index in the batch. */
export interface RejectedEntry {
  index: number;
  reason: RejectReason;
}

/**
 * Index slots of a gateway's good entries (`{ deviceId, channelId }` or `{ code }`), and the bad
 * ones by index with a reason (in order). A gateway bound to a school (`schoolId` not null) may
 * only report that school's devices. `misses` counts unknown devices (worth an index refresh).
 */
export function resolveEntries(
  index: LivenessIndex,
  list: readonly unknown[],
  schoolId: string | null,
): { accepted: number[]; rejected: RejectedEntry[]; misses: number } {
  const accepted: number[] = [];
  const rejected: RejectedEntry[] = [];
  let misses = 0;
  for (let i = 0; i < list.length; i++) {
    const e = list[i];
    let slot: number;
    if (isCameraEntry(e)) slot = index.slotOfCamera(e.deviceId, e.channelId);
    else if (isAlarmEntry(e)) slot = index.slotOfAlarm(e.code);
    else {
      rejected.push({ index: i, reason: 'malformed' });
      continue;
    }
    if (slot < 0) {
      rejected.push({ index: i, reason: 'unknown_device' });
      misses++;
    } else if (schoolId !== null && index.schoolId(slot) !== schoolId) rejected.push({ index: i, reason: 'out_of_scope' });
    else accepted.push(slot);
  }
  return { accepted, rejected, misses };
}

/** `{ deviceId, channelId }`, both 20-digit GB/T 28181 ids, nothing else (a hand check: this runs per entry). */
function isCameraEntry(e: unknown): e is { deviceId: string; channelId: string } {
  if (typeof e !== 'object' || e === null) return false;
  const { deviceId, channelId, code } = e as Record<string, unknown>;
  return code === undefined && isGbId(deviceId) && isGbId(channelId);
}

/** `{ code }` matching CODE_PATTERN, nothing else. */
function isAlarmEntry(e: unknown): e is { code: string } {
  if (typeof e !== 'object' || e === null) return false;
  const { deviceId, channelId, code } = e as Record<string, unknown>;
  return deviceId === undefined && channelId === undefined && typeof code === 'string' && CODE_PATTERN.test(code);
}

/** Same as GB_ID_PATTERN (/^\d{20}$/), without a regex call per id. */
function isGbId(v: unknown): v is string {
  if (typeof v !== 'string' || v.length !== 20) return false;
  for (let i = 0; i < 20; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}
