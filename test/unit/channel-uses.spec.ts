import { channelUses, withoutChannel } from '../../src/modules/notifications/channel-uses';

/** What deleting or disabling a channel would leave each escalation level that names it (channel-uses.ts). */
describe('channel uses of escalation levels', () => {
  const sup = { kind: 'duty', dutyRole: 'duty_supervisor' };
  const user = { kind: 'user', userId: 'u1' };
  const group = (channelId: string) => ({ kind: 'group', channelId });
  const enabled = new Set(['x', 'a', 'b']); // 'off' exists but is disabled; 'gone' was deleted
  type Level = { targets: { kind: string; channelId?: string }[]; channelIds: string[] | null };
  const uses = (levels: Level[], on: ReadonlySet<string> = enabled, channelId = 'x') =>
    channelUses([{ priority: 'P1', levels }], channelId, on).map(({ level, usedAs, onlyChannel, allEnabledChannels, leftUnreachable }) => ({
      level,
      usedAs,
      onlyChannel,
      allEnabledChannels,
      leftUnreachable,
    }));

  it('lists only the levels naming the channel, how they name it, and what each keeps', () => {
    expect(
      uses([
        { targets: [sup], channelIds: ['a'] }, // does not name it
        { targets: [sup], channelIds: ['x'] }, // its people's only channel: nobody left
        { targets: [sup, group('a')], channelIds: ['x'] }, // the group still hears, the supervisor does not
        { targets: [user], channelIds: ['x', 'b'] }, // another channel left
        { targets: [sup, group('x')], channelIds: null }, // people through every enabled channel
        { targets: [group('x')], channelIds: null }, // only that group: nobody left
        { targets: [sup, group('x')], channelIds: ['x', 'off', 'gone'] }, // a disabled or deleted channel counts for none
      ]),
    ).toEqual([
      { level: 2, usedAs: ['channels'], onlyChannel: true, allEnabledChannels: false, leftUnreachable: 'nobody' },
      { level: 3, usedAs: ['channels'], onlyChannel: false, allEnabledChannels: false, leftUnreachable: 'people_without_channel' },
      { level: 4, usedAs: ['channels'], onlyChannel: false, allEnabledChannels: false, leftUnreachable: null },
      { level: 5, usedAs: ['group'], onlyChannel: true, allEnabledChannels: true, leftUnreachable: null },
      { level: 6, usedAs: ['group'], onlyChannel: true, allEnabledChannels: true, leftUnreachable: 'nobody' },
      { level: 7, usedAs: ['channels', 'group'], onlyChannel: true, allEnabledChannels: false, leftUnreachable: 'nobody' },
    ]);
  });

  it('a level with people already without a channel, told only through that group, is left with nobody', () => {
    expect(uses([{ targets: [sup, group('x')], channelIds: [] }])).toEqual([
      { level: 1, usedAs: ['group'], onlyChannel: true, allEnabledChannels: false, leftUnreachable: 'nobody' },
    ]);
  });

  it('the last enabled channel: levels whose people go through every enabled channel would reach nobody, named or not (attack pass 10 #4)', () => {
    const levels: Level[] = [
      { targets: [sup], channelIds: null }, // names no channel: every enabled channel, and x is the last
      { targets: [sup, group('x')], channelIds: null }, // its group and its people's channels both go
      { targets: [group('a')], channelIds: null }, // no people: 'a' is disabled already, x takes nothing from it
      { targets: [user], channelIds: ['x'] }, // a list, as before
      { targets: [sup], channelIds: ['a'] }, // a list without x: untouched (its channel is disabled already)
    ];
    const onlyX = new Set(['x']);
    expect(uses(levels, onlyX)).toEqual([
      { level: 1, usedAs: [], onlyChannel: true, allEnabledChannels: true, leftUnreachable: 'nobody' },
      { level: 2, usedAs: ['group'], onlyChannel: true, allEnabledChannels: true, leftUnreachable: 'nobody' },
      { level: 4, usedAs: ['channels'], onlyChannel: true, allEnabledChannels: false, leftUnreachable: 'nobody' },
    ]);
    // Another enabled channel left ('off' does not count; a silenced one would): those levels keep their people.
    expect(uses(levels, new Set(['x', 'b'])).map((u) => [u.level, u.leftUnreachable])).toEqual([
      [2, null],
      [4, 'nobody'],
    ]);
    // Deleting a channel that is disabled already takes nobody's last channel: nothing to refuse for levels not naming it.
    expect(uses(levels, new Set(), 'off')).toEqual([]);
  });

  it('takes the channel out of a level: a list stays a list (never widened to every channel), other targets stay', () => {
    expect(withoutChannel({ targets: [sup, group('x'), group('a')], channelIds: ['x'] }, 'x')).toEqual({ targets: [sup, group('a')], channelIds: [] });
    expect(withoutChannel({ targets: [sup, group('x')], channelIds: null }, 'x')).toEqual({ targets: [sup], channelIds: null });
  });
});
