import { isVisibleName, visibleName, VISIBLE_NAME } from '../../src/infra/text/person-name';
import { fillTemplate } from '../../src/modules/notifications/providers';

/** Names that draw nothing, and template placeholders that are not variables (attack pass 9 #7, #10). */
describe('names and templates', () => {
  it('refuses names with characters that draw nothing: Hangul fillers, the braille blank, the grapheme joiner, variation selectors', () => {
    for (const blank of ['\u115F', '\u1160', '\u3164', '\uFFA0', '\u2800', '\u034F', '\uFE0F', '\u180E', '\u17B4']) {
      expect({ blank, ok: isVisibleName(`王${blank}五`) }).toEqual({ blank, ok: false });
      expect({ blank, ok: VISIBLE_NAME.test(blank) }).toEqual({ blank, ok: false });
    }
    for (const name of ['李四', 'Li Lei', '欧阳 娜娜', 'Zoë', '王五（保安）'])
      expect({ name, ok: isVisibleName(name) && VISIBLE_NAME.test(name) }).toEqual({ name, ok: true });
    expect(visibleName('\u3164李\u034F四\u202e')).toBe('李四'); // a stored one is shown without them
  });

  it('fills only the message variables: {{constructor}} and other prototype names stay as written', () => {
    const vars = { phone: '13800000001', text: '报警' };
    expect(fillTemplate({ to: '{{phone}}', c: '{{text}}', x: ['{{constructor}}', '{{toString}}', '{{nope}}'] }, vars)).toEqual({
      to: '13800000001',
      c: '报警',
      x: ['{{constructor}}', '{{toString}}', '{{nope}}'],
    });
  });
});
