declare global {
  interface String {
    /** ES2024 (Node 20 has it; the compiler's lib is ES2023; isWellFormed is declared in infra/http/input-guards). */
    toWellFormed(): string;
  }
}

/**
 * Outside text that did not come through the HTTP edge (SIP MANSCDP fields, file cells…) made
 * storable as Postgres `text` (UTF-8): NUL characters are removed (Postgres text cannot hold
 * U+0000: `invalid byte sequence for encoding "UTF8": 0x00`) and lone UTF-16 surrogates (which
 * have no UTF-8 form, e.g. from an `&#xD800;` entity) become U+FFFD. The HTTP edge refuses such
 * text instead (src/infra/http/input-guards.ts textGuard: a person can send it again); devices and
 * files cannot, and what they carry — an alarm — must not be lost for one character of a note.
 *
 * The one place every non-HTTP intake of outside text goes through. Returns `s` itself when it is
 * already storable (a scan, no allocation), so it is cheap on busy paths. `maxChars` (UTF-16 units,
 * as String#slice) cuts the text for a bounded column without splitting a surrogate pair.
 */
export function storableText(s: string, maxChars?: number): string {
  if (s.indexOf('\u0000') >= 0 || !s.isWellFormed()) s = s.replaceAll('\u0000', '').toWellFormed();
  if (maxChars === undefined || s.length <= maxChars) return s;
  // Cut without splitting a surrogate pair (a lone half is refused by Postgres jsonb as \ud83d).
  const code = s.charCodeAt(maxChars - 1);
  return s.slice(0, code >= 0xd800 && code <= 0xdbff ? maxChars - 1 : maxChars);
}

/** True when `s` would be changed by `storableText` (for counting what was repaired). */
export function needsRepair(s: string): boolean {
  return s.indexOf('\u0000') >= 0 || !s.isWellFormed();
}
