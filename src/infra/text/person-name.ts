import { applyDecorators } from '@nestjs/common';
import { IsString, Matches, MaxLength } from 'class-validator';

/**
 * A person's name as typed by someone else (an operator checking in a volunteer), in one form, so
 * that one person is one name: Unicode NFKC (full-width Latin → ASCII, the ideographic space
 * U+3000 → a space), invisible characters removed (zero-width space/joiners, word joiner, BOM),
 * whitespace runs → one space, trimmed, and no space between two Han characters (李 四 is 李四).
 * Latin case is kept as typed (shown as typed); comparisons use personNameKey. Attack finding: 李 + U+3000 + 四,
 * 李\u200b四 and full-width "WANG WEI" each opened another check-in of the same person.
 */
export function personName(s: string): string {
  return s
    .normalize('NFKC')
    .replace(/[\u200B-\u200D\u2060\uFEFF]/g, '')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/(?<=\p{Script=Han}) (?=\p{Script=Han})/gu, '');
}

/**
 * What two names are compared by: personName without Latin case ("Li Lei", "li lei" and "LI LEI"
 * are one person; 李四 has no case). The same as Postgres' lower() of the stored name under the
 * database's UTF-8 ctype (post_checkins.person_key, migration CheckinPersonKey), for Latin letters.
 */
export function personNameKey(s: string): string {
  return personName(s).toLowerCase();
}

/**
 * Characters a display name may not hold: controls (Cc: NUL, tab, newline…), formatting characters
 * (Cf: the bidi marks U+200E/F and U+061C, embeddings/overrides U+202A–202E, isolates U+2066–2069,
 * zero-width space/joiners, word joiner, BOM, soft hyphen, tags) and the line/paragraph separators.
 * "\u202Eevil\u202C 操作员" shows as "live 操作员": a name that is not what it reads as lets one person pass
 * for another in the audit log. ZWJ (U+200D) is refused too: it only matters for emoji sequences, and a
 * person's name on a safety console needs none. Also the letters and marks that draw nothing (Hangul fillers
 * U+115F/U+1160/U+3164/U+FFA0, the braille blank U+2800, the combining grapheme joiner U+034F, Khmer and Mongolian
 * invisibles, variation selectors): a name made of them showed the person on duty as blank (attack pass 9 #10).
 */
const BLANK_LOOKING = '\\u034F\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u2800\\u3164\\uFE00-\\uFE0F\\uFFA0';
// eslint-disable-next-line no-misleading-character-class -- each escape is one code point refused on its own, not a combined character
const INVISIBLE = new RegExp(`[\\p{Cc}\\p{Cf}\\u2028\\u2029${BLANK_LOOKING}]`, 'u');
// eslint-disable-next-line no-misleading-character-class -- each escape is one code point refused on its own, not a combined character
const INVISIBLE_ALL = new RegExp(`[\\p{Cc}\\p{Cf}\\u2028\\u2029${BLANK_LOOKING}]`, 'gu');

/** Whether a display name holds none of the INVISIBLE characters (what users' create/update accept). */
export function isVisibleName(s: string): boolean {
  return !INVISIBLE.test(s);
}

/** A stored name as shown: INVISIBLE characters removed (names stored before they were refused), trimmed. */
export function visibleName(s: string): string {
  return s.replace(INVISIBLE_ALL, '').trim();
}

/** A whole name without INVISIBLE characters (for class-validator's @Matches), and the reason of its 400. */
// eslint-disable-next-line no-misleading-character-class -- each escape is one code point refused on its own, not a combined character
export const VISIBLE_NAME = new RegExp(`^[^\\p{Cc}\\p{Cf}\\u2028\\u2029${BLANK_LOOKING}]*$`, 'u');
export const INVISIBLE_NAME_REASON = 'must not contain control or invisible formatting characters (bidi overrides, zero-width characters)';

/**
 * class-validator rules of a name people read (display names, channel names): a string of at most `max`
 * characters holding none of the INVISIBLE characters; with `notBlank`, not only whitespace either.
 */
export function VisibleText(max: number, opts: { notBlank?: boolean } = {}): PropertyDecorator {
  return applyDecorators(
    IsString(),
    MaxLength(max),
    ...(opts.notBlank ? [Matches(/\S/, { message: 'must not be blank' })] : []),
    Matches(VISIBLE_NAME, { message: INVISIBLE_NAME_REASON }),
  );
}
