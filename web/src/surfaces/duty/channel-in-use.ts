import { ApiError } from '@/api/errors';
import type { ChannelUse } from '@/shared/server';

export type { ChannelUse } from '@/shared/server';

/**
 * The server's refusal to delete or disable a channel escalation levels name (409 NOTIFICATION_CHANNEL.IN_USE, or
 * LEVEL_LEFT_UNREACHABLE after `detach=true`): the levels from its details, and whether taking the channel out of them
 * is refused too — a level that would then notify nobody, or whose people would have no channel left.
 */
export interface InUse {
  levels: ChannelUse[];
  blocked: boolean;
}

const isUse = (u: unknown): u is ChannelUse => {
  const x = u as Partial<ChannelUse> | null;
  return !!x && typeof x.priority === 'string' && typeof x.level === 'number' && Array.isArray(x.usedAs);
};

/** The levels of such a refusal, or null for any other failure. */
export function inUseOf(e: unknown): InUse | null {
  if (!(e instanceof ApiError) || e.status !== 409) return null;
  if (e.code !== 'NOTIFICATION_CHANNEL.IN_USE' && e.code !== 'NOTIFICATION_CHANNEL.LEVEL_LEFT_UNREACHABLE') return null;
  const levels = Array.isArray(e.details?.levels) ? (e.details.levels as unknown[]).filter(isUse) : [];
  return { levels, blocked: e.code === 'NOTIFICATION_CHANNEL.LEVEL_LEFT_UNREACHABLE' || levels.some((u) => !!u.leftUnreachable) };
}
