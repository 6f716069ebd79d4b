import type { Priority } from '../../config/sections';

/**
 * What of an escalation level (policy.service.ts PolicyLevel) names channels: its targets (a group target names one) and
 * its channel list (null = every enabled channel). Structural, so that the console can share ChannelUse (web/src/shared/server.ts)
 * without compiling the policy service.
 */
interface LevelLike {
  targets: { kind: string; channelId?: string }[];
  channelIds: string[] | null;
}

/**
 * How one escalation level names a channel, and what the level would be left with without it: what an admin
 * is told before a channel is deleted or disabled (409 NOTIFICATION_CHANNEL.IN_USE / LEVEL_LEFT_UNREACHABLE).
 */
export interface ChannelUse {
  priority: Priority;
  /** 1-based, as the policy numbers its levels (PolicyView.levels[].level). */
  level: number;
  /**
   * 'channels': one of the channels the level's people are reached through (channelIds); 'group': a group target (the group chat
   * itself). Empty: the level names no channel — its people go through every enabled channel — and this is the last one enabled.
   */
  usedAs: ('channels' | 'group')[];
  /** The level names no other enabled channel (in its channel list or as a group). */
  onlyChannel: boolean;
  /** The level's people are reached through every enabled channel (channelIds null), not through a list. */
  allEnabledChannels: boolean;
  /**
   * What removing the channel would leave: 'nobody' — the level would reach no one at all (its people have no enabled channel left in
   * their list, or it names no people, and no enabled group is left); 'people_without_channel' — its groups are still told, but the
   * people it names (a duty role, a user) lose the last enabled channel of their list (the timeline's "没有可用的通知渠道" at 3 a.m.);
   * null — it still reaches everyone it names. A level whose people go through every enabled channel loses them only with the last
   * channel enabled (attack pass 10 #4).
   */
  leftUnreachable: 'nobody' | 'people_without_channel' | null;
}

/** Does the level name the channel (in its channel list or as a group target)? */
export function namesChannel(l: LevelLike, channelId: string): boolean {
  return (l.channelIds ?? []).includes(channelId) || l.targets.some((t) => t.kind === 'group' && t.channelId === channelId);
}

/** The level without the channel: out of its channel list (a list stays a list, possibly empty: never widened to "every channel") and its group targets. */
export function withoutChannel<L extends LevelLike>(l: L, channelId: string): L {
  return {
    ...l,
    targets: l.targets.filter((t) => !(t.kind === 'group' && t.channelId === channelId)),
    channelIds: l.channelIds === null ? null : l.channelIds.filter((c) => c !== channelId),
  };
}

/**
 * The levels of the given policies that the channel's removal (delete, disable) touches, each with what it would be left with:
 * those that name it, and — when it is the last enabled channel — those whose people go through every enabled channel, which
 * would then be told through none (attack pass 10 #4: they were not counted, so deleting the last channel left them reaching
 * nobody). `enabled`: the channels that exist and are enabled (a silenced one counts: its window ends). Removing a channel
 * that is disabled already takes nothing from a level that does not name it.
 */
export function channelUses(policies: { priority: Priority; levels: LevelLike[] }[], channelId: string, enabled: ReadonlySet<string>): ChannelUse[] {
  const other = (id: string) => id !== channelId && enabled.has(id);
  const takesLast = enabled.has(channelId) && ![...enabled].some(other);
  const out: ChannelUse[] = [];
  for (const p of policies)
    p.levels.forEach((l, i) => {
      const people = l.targets.some((t) => t.kind !== 'group');
      const everyChannel = l.channelIds === null;
      if (!namesChannel(l, channelId) && !(everyChannel && people && takesLast)) return;
      const listLeft = (l.channelIds ?? []).filter(other);
      const groupsLeft = l.targets.filter((t) => t.kind === 'group' && !!t.channelId && other(t.channelId));
      const peopleReached = people && (everyChannel ? !takesLast : listLeft.length > 0);
      const inList = (l.channelIds ?? []).includes(channelId);
      out.push({
        priority: p.priority,
        level: i + 1,
        usedAs: [
          ...(inList ? ['channels' as const] : []),
          ...(l.targets.some((t) => t.kind === 'group' && t.channelId === channelId) ? ['group' as const] : []),
        ],
        onlyChannel: listLeft.length === 0 && groupsLeft.length === 0,
        allEnabledChannels: everyChannel,
        leftUnreachable: !peopleReached && groupsLeft.length === 0 ? 'nobody' : people && inList && listLeft.length === 0 ? 'people_without_channel' : null,
      });
    });
  return out;
}
