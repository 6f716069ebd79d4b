import { HttpStatus } from '@nestjs/common';
import { ErrorCode } from '../../infra/http/error-codes';
import { DomainError } from '../../infra/http/errors';

/**
 * Failures of live video and snapshots, with stable codes (the console shows a message per
 * code). The same errors reach HTTP callers (status) and WebSocket viewers (`{type:'error'}`).
 */
export const VideoErrors = {
  noStreamAddress: (cameraId: string, why: string) =>
    new DomainError(HttpStatus.CONFLICT, ErrorCode.VIDEO.NO_STREAM_ADDRESS, `camera ${cameraId} has no stream address: ${why}`),
  deviceOffline: (deviceId: string) =>
    new DomainError(HttpStatus.SERVICE_UNAVAILABLE, ErrorCode.VIDEO.DEVICE_OFFLINE, `GB/T 28181 device ${deviceId} is not registered (offline)`),
  deviceBusy: (deviceId: string) =>
    new DomainError(HttpStatus.SERVICE_UNAVAILABLE, ErrorCode.VIDEO.DEVICE_BUSY, `GB/T 28181 device ${deviceId} is busy (486): it serves no more streams`),
  deviceRejected: (deviceId: string, status: number) =>
    new DomainError(HttpStatus.BAD_GATEWAY, ErrorCode.VIDEO.DEVICE_REJECTED, `GB/T 28181 device ${deviceId} refused to play (SIP ${status})`, {
      sipStatus: status,
    }),
  inviteTimeout: (deviceId: string, ms: number) =>
    new DomainError(HttpStatus.GATEWAY_TIMEOUT, ErrorCode.VIDEO.INVITE_TIMEOUT, `GB/T 28181 device ${deviceId} did not answer the INVITE within ${ms} ms`),
  noMedia: (ms: number) => new DomainError(HttpStatus.GATEWAY_TIMEOUT, ErrorCode.VIDEO.NO_MEDIA, `no picture from the camera within ${ms} ms`),
  stalled: (ms: number) => new DomainError(HttpStatus.GATEWAY_TIMEOUT, ErrorCode.VIDEO.STALLED, `the camera sent nothing for ${ms} ms: stream stopped`),
  upstreamEnded: (why: string) => new DomainError(HttpStatus.BAD_GATEWAY, ErrorCode.VIDEO.UPSTREAM_ENDED, `the camera ended the stream: ${why}`),
  upstreamFailed: (why: string) => new DomainError(HttpStatus.BAD_GATEWAY, ErrorCode.VIDEO.UPSTREAM_FAILED, `the stream could not be remuxed: ${why}`),
  capacity: (max: number) =>
    new DomainError(HttpStatus.SERVICE_UNAVAILABLE, ErrorCode.VIDEO.CAPACITY, `this server already plays ${max} cameras (video.maxStreams)`, {
      retryAfterSeconds: 10,
    }),
  viewerCapacity: (max: number) =>
    new DomainError(HttpStatus.SERVICE_UNAVAILABLE, ErrorCode.VIDEO.VIEWER_CAPACITY, `this camera already has ${max} viewers (video.maxViewersPerStream)`),
  transcodeCapacity: (max: number) =>
    new DomainError(
      HttpStatus.SERVICE_UNAVAILABLE,
      ErrorCode.VIDEO.TRANSCODE_CAPACITY,
      `H.265 cameras need a transcode for the browser and ${max} are running (video.maxTranscodes)`,
    ),
  noRtpPort: () => new DomainError(HttpStatus.SERVICE_UNAVAILABLE, ErrorCode.VIDEO.NO_RTP_PORT, 'no free RTP port in video.rtpPortMin..rtpPortMax'),
  snapshotTimeout: (ms: number) => new DomainError(HttpStatus.GATEWAY_TIMEOUT, ErrorCode.VIDEO.SNAPSHOT_TIMEOUT, `no snapshot within ${ms} ms`),
  disabled: () => new DomainError(HttpStatus.SERVICE_UNAVAILABLE, ErrorCode.VIDEO.DISABLED, 'live video is not served by this process (video.enabled)'),
  playbackUnsupported: (cameraId: string) =>
    new DomainError(
      HttpStatus.CONFLICT,
      ErrorCode.VIDEO.PLAYBACK_UNSUPPORTED,
      `camera ${cameraId} cannot play recordings: it is not a GB/T 28181 channel (§9.8) and has no RTSP playback URL template (PATCH /cameras/:id/media)`,
    ),
  playbackCapacity: (scope: 'process' | 'user' | 'camera', max: number) =>
    new DomainError(
      HttpStatus.SERVICE_UNAVAILABLE,
      ErrorCode.VIDEO.PLAYBACK_CAPACITY,
      `${max} playback(s) already run for this ${scope === 'process' ? 'server (video.maxPlaybacks)' : scope === 'user' ? 'user (video.maxPlaybacksPerUser)' : 'camera (video.maxPlaybacksPerCamera)'}`,
      { scope, max, retryAfterSeconds: 10 },
    ),
  playbackEnded: () => new DomainError(HttpStatus.GONE, ErrorCode.VIDEO.PLAYBACK_ENDED, 'the playback session has ended: ask POST /cameras/:id/playback again'),
  stopped: () => new DomainError(HttpStatus.SERVICE_UNAVAILABLE, ErrorCode.VIDEO.SHUTTING_DOWN, 'the server is shutting down'),
};

export function asDomainError(e: unknown): DomainError {
  if (e instanceof DomainError) return e;
  return VideoErrors.upstreamFailed((e as Error)?.message ?? String(e));
}
