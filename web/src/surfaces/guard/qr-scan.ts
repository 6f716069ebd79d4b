/**
 * Reads a QR code from the phone's camera: getUserMedia (the back camera when there is one), a
 * frame every SCAN_INTERVAL_MS drawn to a canvas (at most SCAN_WIDTH px wide) and decoded with
 * jsQR (loaded with this surface only). Stops at the first code, on `stop()`, or after
 * SCAN_TIMEOUT_MS without one ('timeout'), releasing the camera every time.
 */
export const SCAN_INTERVAL_MS = 150;
export const SCAN_TIMEOUT_MS = 90_000;
const SCAN_WIDTH = 640;

export type ScanFailure = 'denied' | 'noCamera' | 'cameraFailed' | 'timeout';
export type ScanResult = { ok: true; text: string } | { ok: false; reason: ScanFailure } | { ok: false; reason: 'stopped' };

export interface Scan {
  result: Promise<ScanResult>;
  stop(): void;
}

function failure(e: unknown): ScanFailure {
  const name = (e as { name?: string } | null)?.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') return 'denied';
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return 'noCamera';
  return 'cameraFailed';
}

export function scanQr(video: HTMLVideoElement): Scan {
  let stopped = false;
  let stream: MediaStream | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let finish: (r: ScanResult) => void = () => undefined;
  const release = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    stream?.getTracks().forEach((t) => t.stop());
    stream = null;
    video.srcObject = null;
  };
  const result = new Promise<ScanResult>((resolve) => {
    finish = (r) => {
      if (stopped) return;
      stopped = true;
      release();
      resolve(r);
    };
  });

  void (async () => {
    if (!navigator.mediaDevices?.getUserMedia) return finish({ ok: false, reason: 'noCamera' });
    const [{ default: jsQR }, media] = await Promise.all([
      import('jsqr'),
      navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: 'environment' } }, audio: false }).catch((e: unknown) => e),
    ]);
    if (!(media instanceof MediaStream)) return finish({ ok: false, reason: failure(media) });
    if (stopped) return void media.getTracks().forEach((t) => t.stop());
    stream = media;
    video.srcObject = media;
    video.muted = true;
    video.setAttribute('playsinline', '');
    await video.play().catch(() => undefined);
    const canvas = document.createElement('canvas');
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) return finish({ ok: false, reason: 'cameraFailed' });
    const deadline = Date.now() + SCAN_TIMEOUT_MS;
    const tick = () => {
      if (stopped) return;
      if (Date.now() > deadline) return finish({ ok: false, reason: 'timeout' });
      if (video.readyState >= 2 && video.videoWidth > 0) {
        const scale = Math.min(1, SCAN_WIDTH / video.videoWidth);
        canvas.width = Math.round(video.videoWidth * scale);
        canvas.height = Math.round(video.videoHeight * scale);
        ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
        const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
        const code = jsQR(img.data, img.width, img.height, { inversionAttempts: 'attemptBoth' });
        if (code?.data) return finish({ ok: true, text: code.data });
      }
      timer = setTimeout(tick, SCAN_INTERVAL_MS);
    };
    tick();
  })().catch((e: unknown) => finish({ ok: false, reason: failure(e) }));

  return { result, stop: () => finish({ ok: false, reason: 'stopped' }) };
}

/**
 * The post's token from what the QR code says: the token itself, or a link carrying it as
 * `token=` / `qrToken=` (a printed sheet may encode a link). Null when it cannot be one.
 */
export function postToken(text: string): string | null {
  const s = text.trim();
  let token = s;
  if (/^https?:\/\//i.test(s)) {
    try {
      const u = new URL(s);
      token = u.searchParams.get('qrToken') ?? u.searchParams.get('token') ?? '';
    } catch {
      return null;
    }
  }
  return token.length >= 4 && token.length <= 200 ? token : null;
}
