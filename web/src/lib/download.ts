/** Saves a Blob the api answered (an export) as a file the browser downloads. */
export function saveBlob(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  // The download has its own reference by now; the URL is not needed after this turn.
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

const DAY_MS = 86_400_000;

/**
 * The start of a day ('YYYY-MM-DD' from a date field) in Asia/Shanghai (UTC+8, no daylight
 * saving), `plusDays` later, as an ISO instant: day boundaries are the district's, whatever the
 * browser's zone. A range "from D1 to D2" is [start(D1), start(D2 + 1)).
 */
export function shanghaiDayStart(date: string, plusDays = 0): string {
  return new Date(Date.parse(`${date}T00:00:00+08:00`) + plusDays * DAY_MS).toISOString();
}
