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
