import { channelUses, withoutChannel } from '../../src/modules/notifications/channel-uses';

/** What deleting or disabling a channel would leave each escalation level that names it (channel-uses.ts). */
describe('channel uses of escalation levels', () => {
  const sup = { kind: 'duty', dutyRole: 'duty_supervisor' };
  const user = { kind: 'user', userId: 'u1' };
  const group = (channelId: string) => ({ kind: 'group', channelId });
  const enabled = new Set(['x', 'a', 'b']); // 'off' exists but is disabled; 'gone' was deleted
  const uses = (levels: { targets: { kind: string; channelId?: string }[]; channelIds: string[] | null }[]) =>
    channelUses([{ priority: 'P1', levels }], 'x', (id) => enabled.has(id)).map(({ level, usedAs, onlyChannel, allEnabledChannels, leftUnreachable }) => ({
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

  it('takes the channel out of a level: a list stays a list (never widened to every channel), other targets stay', () => {
    expect(withoutChannel({ targets: [sup, group('x'), group('a')], channelIds: ['x'] }, 'x')).toEqual({ targets: [sup, group('a')], channelIds: [] });
    expect(withoutChannel({ targets: [sup, group('x')], channelIds: null }, 'x')).toEqual({ targets: [sup], channelIds: null });
  });
});
