/**
 * The photo a guard attaches to an alarm — or to a rectification task before closing it
 * (GuardTasks.vue): taken with the phone camera (or chosen), re-encoded here
 * to a JPEG of at most PHOTO_MAX_EDGE pixels a side — a phone's 12-megapixel picture becomes a few
 * hundred KB that a school's mobile network sends in seconds, in the one format the server takes,
 * without the phone's EXIF (its GPS and serial number). An alarm's is uploaded only after the alarm is
 * received: the alarm never waits for its photo.
 */
import { ApiError } from '@/api/errors';
import { api } from '@/api/http';
import { isTransientStatus, RETRY_DELAYS_MS } from './alarm-sender';

export const PHOTO_MAX_EDGE = 1600;
export const PHOTO_QUALITY = 0.82;
/** One upload try's time limit on a phone's network. */
export const PHOTO_TRY_TIMEOUT_MS = 30_000;

/** The size a picture of w×h is scaled to (never enlarged). */
export function fitWithin(w: number, h: number, max = PHOTO_MAX_EDGE): { width: number; height: number } {
  const k = Math.min(1, max / Math.max(w, h, 1));
  return { width: Math.max(1, Math.round(w * k)), height: Math.max(1, Math.round(h * k)) };
}

/** The picture as a JPEG Blob (throws when the browser cannot read the file as an image). */
export async function preparePhoto(file: Blob): Promise<Blob> {
  const bitmap = await createImageBitmap(file);
  try {
    const { width, height } = fitWithin(bitmap.width, bitmap.height);
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('no 2d canvas');
    ctx.drawImage(bitmap, 0, 0, width, height);
    const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/jpeg', PHOTO_QUALITY));
    if (!blob) throw new Error('could not encode the photo');
    return blob;
  } finally {
    bitmap.close();
  }
}

export type PhotoPhase = 'uploading' | 'retrying' | 'sent' | 'failed';

/**
 * Where a photo goes: an alarm (POST /incidents/:id/photos, the timeline shows it) or a rectification task before
 * it is closed (POST /rectification-tasks/:id/photos; the closing names the evidence ids). Both take the same file.
 */
export type PhotoTarget = { incidentId: string } | { taskId: string };

/** One try: the stored photo's evidence id. */
async function sendOnce(target: PhotoTarget, photo: Blob, key: string): Promise<string> {
  const form = new FormData();
  form.append('file', photo, 'photo.jpg');
  const opts = { form, headers: { 'Idempotency-Key': key }, timeoutMs: PHOTO_TRY_TIMEOUT_MS };
  const stored =
    'taskId' in target
      ? await api.post('/api/v1/rectification-tasks/{id}/photos', { path: { id: target.taskId }, ...opts })
      : await api.post('/api/v1/incidents/{id}/photos', { path: { id: target.incidentId }, ...opts });
  return stored.id;
}

/**
 * Uploads a photo with a client key (a retry stores nothing twice), trying again on no answer,
 * timeouts, 5xx and 429 like the alarm itself. Resolves the stored photo's evidence id once the
 * server has it, null when it gave up (or was aborted).
 */
export async function uploadPhoto(
  target: PhotoTarget,
  photo: Blob,
  key: string,
  onPhase: (p: PhotoPhase, error?: unknown) => void,
  signal?: AbortSignal,
  delays: readonly number[] = RETRY_DELAYS_MS,
): Promise<string | null> {
  for (let attempt = 0; ; attempt++) {
    if (signal?.aborted) return null;
    onPhase(attempt === 0 ? 'uploading' : 'retrying');
    try {
      const id = await sendOnce(target, photo, key);
      onPhase('sent');
      return id;
    } catch (e) {
      const status = e instanceof ApiError ? e.status : 0;
      const wait = delays[attempt];
      if (!isTransientStatus(status) || wait === undefined) {
        onPhase('failed', e);
        return null;
      }
      onPhase('retrying', e);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, wait);
        signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
    }
  }
}
