/**
 * A camera's account for its RTSP pulls (the ONVIF one), or null. `host`: the camera's configured
 * ONVIF host — the account is sent to addresses on that host only (withAccount).
 */
export type CameraAccount = { username: string; password: string; host?: string } | null;

const PLACEHOLDER = /\{(start|end)(Utc)?:([^{}]{1,40})\}/g;

/**
 * Fills a recorder's playback URL template with a range. Placeholders: `{start:FMT}` / `{end:FMT}`
 * in the recorder's local time (video.recorderTimeZone), `{startUtc:FMT}` / `{endUtc:FMT}` in UTC;
 * FMT tokens YYYY MM DD HH mm ss, anything else is copied. Examples (docs/OPERATIONS.md):
 * Hikvision `rtsp://nvr/Streaming/tracks/101?starttime={startUtc:YYYYMMDDTHHmmssZ}&endtime={endUtc:YYYYMMDDTHHmmssZ}`
 * (a trailing Z asks for UTC; firmware that reads the time as local wants `{start:…}` with the Z kept),
 * Dahua `rtsp://nvr/cam/playback?channel=1&subtype=0&starttime={start:YYYY_MM_DD_HH_mm_ss}&endtime={end:YYYY_MM_DD_HH_mm_ss}` (local time).
 */
export function fillPlaybackTemplate(template: string, range: { start: Date; end: Date }, timeZone: string): string {
  return template.replace(PLACEHOLDER, (_, which: 'start' | 'end', utc: string | undefined, fmt: string) =>
    formatTime(range[which], utc ? 'UTC' : timeZone, fmt),
  );
}

function formatTime(d: Date, timeZone: string, fmt: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    })
      .formatToParts(d)
      .map((p) => [p.type, p.value]),
  ) as Record<string, string>;
  const tokens: Record<string, string> = { YYYY: parts.year, MM: parts.month, DD: parts.day, HH: parts.hour, mm: parts.minute, ss: parts.second };
  return fmt.replace(/YYYY|MM|DD|HH|mm|ss/g, (t) => tokens[t]);
}

/** Why a playback URL template is refused, or null. */
export function templateProblem(template: string): string | null {
  if (template === '') return null;
  if (!/^rtsps?:\/\/[^\s/@]+(\/\S*)?$/i.test(template)) return 'an rtsp:// URL without spaces or an account (the account is the ONVIF one)';
  const names = [...template.matchAll(PLACEHOLDER)].map((m) => m[1]);
  if (!names.includes('start') || !names.includes('end'))
    return 'must hold a start and an end placeholder, e.g. {start:YYYYMMDDTHHmmss} and {end:YYYYMMDDTHHmmss}';
  if (/[{}]/.test(template.replace(PLACEHOLDER, ''))) return 'unknown placeholder: only {start:FMT}, {end:FMT}, {startUtc:FMT}, {endUtc:FMT}';
  return null;
}

/**
 * `url` with the account in it, for ffmpeg only (never stored, never shown): RTSP cameras ask for
 * digest auth with the ONVIF account. When the account is bound to a host (the camera's ONVIF host
 * is set), an address on another host gets no account: ffmpeg answers a Basic challenge with the
 * password in clear, so it goes to the configured host only (attack pass: a probed device named
 * another server as its stream). Without an ONVIF host, the admin named both the address and the
 * account, as before.
 */
export function withAccount(url: string, account: CameraAccount): string {
  if (!account?.username) return url;
  const m = /^(rtsps?:\/\/)([^/@]*@)?(.*)$/i.exec(url);
  if (!m || m[2]) return url; // not RTSP, or an account already in the address
  if (account.host !== undefined) {
    const host = /^(\[[^\]]*\]|[^/?#:]*)/
      .exec(m[3])![1]
      .replace(/^\[|\]$/g, '')
      .toLowerCase();
    if (host !== account.host.replace(/^\[|\]$/g, '').toLowerCase()) return url;
  }
  return `${m[1]}${encodeURIComponent(account.username)}:${encodeURIComponent(account.password)}@${m[3]}`;
}

/** An address with any account in it hidden (messages from ffmpeg name the URL it pulled). */
export function hideAccount(s: string): string {
  return s.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1');
}
