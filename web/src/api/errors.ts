import type { Msg } from '@/i18n';
import type { MessageKey } from '@/i18n/zh-CN';
import type { ErrorCode } from '@/shared/server';
import { fmtTime } from '@/lib/format';

/** A failed request or socket action: the server's stable `code`, never its (English) message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly requestId?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Codes of the client itself (no answer from the server). */
type ClientCode = 'NETWORK' | 'TIMEOUT' | 'UNAVAILABLE';

/**
 * The message for every code the server catalogues (src/infra/http/error-codes.ts): the type
 * makes this table exhaustive, so a code added on the server breaks the web build until it has
 * a message in both languages.
 */
const BY_CODE: Record<ErrorCode | ClientCode, MessageKey> = {
  VALIDATION_FAILED: 'errors.validation',
  MALFORMED_BODY: 'errors.validation',
  BODY_TOO_COMPLEX: 'errors.validation',
  PAYLOAD_TOO_LARGE: 'errors.tooLarge',
  INTERNAL: 'errors.internal',
  BAD_REQUEST: 'errors.validation',
  NOT_FOUND: 'errors.notFound',
  METHOD_NOT_ALLOWED: 'errors.forbidden',
  CONFLICT: 'errors.conflict',
  UNSUPPORTED_MEDIA_TYPE: 'errors.validation',
  RATE_LIMITED: 'errors.tooManyAttempts',
  REQUEST_HEADERS_TOO_LARGE: 'errors.tooLarge',
  REQUEST_TIMEOUT: 'errors.network',
  'CONFLICT.DUPLICATE': 'errors.duplicate',
  'CONFLICT.REFERENCE': 'errors.conflict',
  'AUTH.UNAUTHENTICATED': 'errors.unauthenticated',
  'AUTH.FORBIDDEN': 'errors.forbidden',
  'AUTH.OUT_OF_SCOPE': 'errors.outOfScope',
  'AUTH.ROLE_FORBIDDEN': 'errors.roleForbidden',
  'AUTH.ROUTE_UNDECLARED': 'errors.forbidden',
  'AUTH.WRONG_DEVICE_KIND': 'errors.forbidden',
  'AUTH.DEVICE_CREDENTIALS_REQUIRED': 'errors.unauthenticated',
  'AUTH.DEVICE_CREDENTIALS_INVALID': 'errors.unauthenticated',
  'AUTH.TOKEN_EXPIRED': 'errors.tokenExpired',
  'AUTH.TOKEN_INVALID': 'errors.tokenExpired',
  'AUTH.TOKEN_REVOKED': 'errors.tokenRevoked',
  'AUTH.INVALID_CREDENTIALS': 'errors.invalidCredentials',
  'AUTH.TOO_MANY_ATTEMPTS': 'errors.tooManyAttempts',
  'AUTH.REFRESH_INVALID': 'errors.tokenExpired',
  'AUTH.REFRESH_REUSED': 'errors.tokenRevoked',
  'USER.NOT_FOUND': 'errors.notFound',
  'USER.USERNAME_TAKEN': 'errors.duplicate',
  'USER.LAST_ADMIN': 'errors.lastAdmin',
  'DEVICE_CREDENTIAL.NOT_FOUND': 'errors.notFound',
  'DISTRICT.NOT_FOUND': 'errors.notFound',
  'DISTRICT.DUPLICATE': 'errors.duplicate',
  'ZONE.NOT_FOUND': 'errors.notFound',
  'ZONE.DUPLICATE': 'errors.duplicate',
  'GROUP.NOT_FOUND': 'errors.notFound',
  'GROUP.DUPLICATE': 'errors.duplicate',
  'SCHOOL.NOT_FOUND': 'errors.notFound',
  'SCHOOL.DUPLICATE': 'errors.duplicate',
  'CAMERA.NOT_FOUND': 'errors.notFound',
  'CAMERA.DUPLICATE': 'errors.duplicate',
  'ALARM_DEVICE.NOT_FOUND': 'errors.notFound',
  'ALARM_DEVICE.DUPLICATE': 'errors.duplicate',
  'GUARD.NOT_FOUND': 'errors.notFound',
  'GUARD.DUPLICATE': 'errors.duplicate',
  'PROTECTION_POST.NOT_FOUND': 'errors.notFound',
  'PROTECTION_POST.DUPLICATE': 'errors.duplicate',
  'PROTECTION_POST.QR_EXPIRED': 'errors.qrExpired',
  'IMPORT.NOT_MULTIPART': 'errors.importFile',
  'IMPORT.BAD_UPLOAD': 'errors.importFile',
  'IMPORT.NO_FILE': 'errors.importFile',
  'IMPORT.UNREADABLE_FILE': 'errors.importFile',
  'IMPORT.INVALID_HEADER': 'errors.importFile',
  'IMPORT.TOO_MANY_ROWS': 'errors.importFile',
  'IMPORT.INVALID_ROWS': 'errors.importFile',
  'IMPORT.UNSURE_ENCODING': 'errors.importFile',
  'IMPORT.TOO_LARGE_CONTENT': 'errors.importFile',
  'IMPORT.CELL_TOO_LONG': 'errors.importFile',
  'IMPORT.TOO_MUCH_TEXT': 'errors.importFile',
  'IMPORT.BUSY': 'errors.unavailable',
  'IMPORT.BUSY_FOR_USER': 'errors.importBusyForUser',
  'HEAVY_READ.BUSY': 'errors.readsBusy',
  'HEAVY_READ.TOO_MANY': 'errors.tooManyReads',
  'UNAVAILABLE.DATABASE': 'errors.unavailable',
  'UNAVAILABLE.REDIS': 'errors.unavailable',
  'DEVICE.NOT_FOUND': 'errors.notFound',
  'OUTAGE.NOT_FOUND': 'errors.notFound',
  'MAINTENANCE_WINDOW.NOT_FOUND': 'errors.notFound',
  'MAINTENANCE_WINDOW.STARTED': 'errors.maintenanceStarted',
  'MAINTENANCE_WINDOW.NOT_STARTED': 'errors.maintenanceNotStarted',
  'MAINTENANCE_WINDOW.OVER': 'errors.maintenanceOver',
  'MAINTENANCE_WINDOW.OVERLAP': 'errors.maintenanceOverlap',
  'MAINTENANCE_WINDOW.DISTRICT_ADMIN_ONLY': 'errors.forbidden',
  'INCIDENT.TOO_MANY_PRESSES': 'errors.tooManyAttempts',
  'INCIDENT.TOO_MANY_NOTES': 'errors.tooManyAttempts',
  'INCIDENT.TOO_MANY_RAISES': 'errors.tooManyRaises',
  'INCIDENT.CLIENT_EVENT_REUSED': 'errors.conflict',
  'INCIDENT.PRIORITY_BELOW_TYPE': 'errors.priorityBelowType',
  'CONSOLE.TOO_MANY_ACTIONS': 'errors.tooManyAttempts',
  'CONSOLE.TOO_MANY_SOCKETS': 'errors.tooManyAttempts',
  'INCIDENT.NOT_FOUND': 'errors.notFound',
  'ALARM.ALREADY_ACKNOWLEDGED': 'errors.alreadyAcknowledged',
  'ALARM.INVALID_TRANSITION': 'errors.invalidTransition',
  'ALARM.LATCHED': 'errors.latched',
  'ALARM.CONCURRENT_CHANGE': 'errors.concurrentChange',
  'ALARM.NOT_A_DRILL': 'errors.notADrill',
  'ALARM.CANCEL_NOT_OWN': 'errors.cancelNotOwn',
  'DRILL_WINDOW.NOT_FOUND': 'errors.notFound',
  'HANDOVER.NOT_FOUND': 'errors.notFound',
  'HANDOVER.ALREADY_ACKNOWLEDGED': 'errors.handoverTaken',
  'HANDOVER.OWN': 'errors.handoverOwn',
  'DRILL_WINDOW.NOT_PENDING': 'errors.drillNotPending',
  'DRILL_WINDOW.OVER': 'errors.drillOver',
  'DRILL_WINDOW.NOT_APPROVED': 'errors.drillNotApproved',
  'DRILL_WINDOW.SILENCE_LIMIT': 'errors.drillSilenceLimit',
  'BUTTON_TEST.DAILY_LIMIT': 'errors.testModeDailyLimit',
  'CONSOLE.RESYNC_FAILED': 'errors.unavailable',
  'GB28181.NOT_REGISTERED': 'errors.gbNotRegistered',
  'GB28181.NOT_FOUND': 'errors.notFound',
  'GB28181.DEVICE_TIMEOUT': 'errors.gbDeviceTimeout',
  'GB28181.DEVICE_REFUSED': 'errors.gbDeviceRefused',
  'GB28181.SIP_NOT_RUNNING': 'errors.unavailable',
  'VIDEO.NO_STREAM_ADDRESS': 'errors.videoNoAddress',
  'VIDEO.DEVICE_OFFLINE': 'errors.videoOffline',
  'VIDEO.DEVICE_BUSY': 'errors.videoBusy',
  'VIDEO.DEVICE_REJECTED': 'errors.videoRefused',
  'VIDEO.BAD_ANSWER': 'errors.videoRefused',
  'VIDEO.INVITE_TIMEOUT': 'errors.videoNoAnswer',
  'VIDEO.NO_MEDIA': 'errors.videoNoPicture',
  'VIDEO.STALLED': 'errors.videoStalled',
  'VIDEO.UPSTREAM_ENDED': 'errors.videoEnded',
  'VIDEO.UPSTREAM_FAILED': 'errors.videoFailed',
  'VIDEO.CAPACITY': 'errors.videoCapacity',
  'VIDEO.VIEWER_CAPACITY': 'errors.videoCapacity',
  'VIDEO.TRANSCODE_CAPACITY': 'errors.videoCapacity',
  'VIDEO.NO_RTP_PORT': 'errors.videoCapacity',
  'VIDEO.SNAPSHOT_TIMEOUT': 'errors.videoNoPicture',
  'VIDEO.DISABLED': 'errors.videoFailed',
  'VIDEO.SHUTTING_DOWN': 'errors.unavailable',
  'VIDEO.PLAYBACK_UNSUPPORTED': 'errors.videoPlaybackUnsupported',
  'VIDEO.PLAYBACK_ENDED': 'errors.videoPlaybackEnded',
  'VIDEO.PLAYBACK_CAPACITY': 'errors.videoPlaybackCapacity',
  'VIDEO.TOKEN_INVALID': 'errors.videoToken',
  'VIDEO.TOKEN_EXPIRED': 'errors.videoToken',
  'VIDEO.TOKEN_WRONG_CAMERA': 'errors.videoToken',
  'VIDEO.VIEWER_TOO_SLOW': 'errors.videoTooSlow',
  'VIDEO.EVIDENCE_CHECKSUM_MISMATCH': 'errors.evidenceAltered',
  'VIDEO.EVIDENCE_MISSING': 'errors.evidenceMissing',
  'VIDEO.ONVIF_UNREACHABLE': 'errors.onvifUnreachable',
  'VIDEO.ONVIF_AUTH_FAILED': 'errors.onvifAuthFailed',
  'VIDEO.ONVIF_NOT_ONVIF': 'errors.onvifNotOnvif',
  'VIDEO.ONVIF_NOT_CONFIGURED': 'errors.onvifNotConfigured',
  'VIDEO.SNAPSHOT_URI_REFUSED': 'errors.snapshotUriRefused',
  'VIDEO.SNAPSHOT_URI_AUTH_FAILED': 'errors.snapshotUriAuthFailed',
  'VIDEO.SNAPSHOT_URI_TIMEOUT': 'errors.videoNoPicture',
  'VIDEO.SNAPSHOT_URI_NOT_JPEG': 'errors.snapshotUriNotJpeg',
  'VIDEO.SNAPSHOT_URI_FAILED': 'errors.videoNoPicture',
  'VIDEO.ONVIF_ADDRESS_REFUSED': 'errors.onvifAddressRefused',
  'VIDEO.ONVIF_ANSWER_TOO_LARGE': 'errors.onvifAnswerTooLarge',
  'VIDEO.ONVIF_PROBE_BUSY': 'errors.onvifProbeBusy',
  'EVIDENCE.NOT_FOUND': 'errors.notFound',
  'EVIDENCE.PHOTO_NOT_JPEG': 'errors.photoNotJpeg',
  'EVIDENCE.PHOTO_MISSING': 'errors.photoMissing',
  'EVIDENCE.PHOTO_LIMIT': 'errors.photoLimit',
  'EVIDENCE.PHOTO_KEY_REUSED': 'errors.photoKeyReused',
  'EVIDENCE.INCIDENT_CLOSED': 'errors.photoIncidentClosed',
  'PATROL_PLAN.NOT_FOUND': 'errors.notFound',
  'PATROL_RUN.NOT_FOUND': 'errors.notFound',
  'PATROL_ROUND.NOT_FOUND': 'errors.notFound',
  'PATROL_ROUND.NO_CAMERAS': 'errors.conflict',
  'PATROL_ROUND.NOT_YOURS': 'errors.forbidden',
  'PATROL_ROUND.ALREADY_JUDGED': 'errors.conflict',
  'PATROL_ROUND.TOO_FAST': 'errors.roundTooFast',
  'PATROL_ROUND.NORMAL_NEEDS_PICTURE': 'errors.roundNormalNeedsPicture',
  'PATROL_ROUND_ITEM.NOT_FOUND': 'errors.notFound',
  'POST_CHECKIN.NOT_FOUND': 'errors.notFound',
  'POST_CHECKIN.ALREADY_CHECKED_OUT': 'errors.conflict',
  'POST_CHECKIN.TOO_FREQUENT': 'errors.checkinTooFrequent',
  'POST_CHECKIN.ALREADY_CHECKED_IN': 'errors.checkinAlreadyOpen',
  'GUARD_PATROL.TOO_FREQUENT': 'errors.patrolTooFrequent',
  'RECTIFICATION_TASK.NOT_FOUND': 'errors.notFound',
  'RECTIFICATION_TASK.ALREADY_CLOSED': 'errors.taskAlreadyClosed',
  'RECTIFICATION_TASK.NOT_CLOSED': 'errors.taskNotClosed',
  'RECTIFICATION_TASK.OPEN_TASK_EXISTS': 'errors.taskOpenExists',
  'QUEUE_BOARD.NOT_OFFERED': 'errors.queueBoardNotOffered',
  'QUEUE_BOARD.PROTECTED_QUEUE': 'errors.queueBoardProtected',
  'DUTY_SHIFT.NOT_FOUND': 'errors.notFound',
  'DUTY_SHIFT.NOT_ON_DUTY': 'errors.notOnDuty',
  'DUTY_SHIFT.OVERLAP': 'errors.shiftOverlap',
  'DUTY_SHIFT.ENDED': 'errors.shiftEnded',
  'DUTY_SHIFT.STARTED': 'errors.shiftStarted',
  'NOTIFICATION_CHANNEL.NOT_FOUND': 'errors.notFound',
  'NOTIFICATION_CHANNEL.IN_USE': 'errors.channelInUse',
  'NOTIFICATION_CHANNEL.LEVEL_LEFT_UNREACHABLE': 'errors.channelLevelUnreachable',
  'NOTIFICATION_LINK.INVALID': 'errors.linkInvalid',
  'NOTIFICATION_LINK.EXPIRED': 'errors.linkExpired',
  NETWORK: 'errors.network',
  TIMEOUT: 'errors.timeout',
  UNAVAILABLE: 'errors.unavailable',
};

/** The message for an error, in the page's language. */
export function errorMsg(e: { code: string; details?: Record<string, unknown>; requestId?: string; status?: number }): Msg {
  if (e.code === 'ALARM.ALREADY_ACKNOWLEDGED') {
    const by = (e.details?.acknowledgedBy as { name?: unknown } | undefined)?.name;
    return { key: 'errors.alreadyAcknowledged', params: { name: typeof by === 'string' && by ? by : '—' } };
  }
  if (e.code === 'DUTY_SHIFT.OVERLAP') {
    // The clashing shift (details.startsAt/endsAt), in school-local time (Asia/Shanghai).
    const from = typeof e.details?.startsAt === 'string' ? e.details.startsAt : null;
    const to = typeof e.details?.endsAt === 'string' ? e.details.endsAt : null;
    if (from && to) return { key: 'errors.shiftOverlapWith', params: { from: fmtTime(from), to: fmtTime(to) } };
  }
  if (e.code === 'INTERNAL') return { key: 'errors.internal', params: { requestId: e.requestId ?? '—' } };
  const key = (BY_CODE as Record<string, MessageKey | undefined>)[e.code];
  if (key) return { key };
  // Not catalogued (an older or newer server): by status, never the raw code alone.
  if (e.status === 503) return { key: 'errors.unavailable' };
  if ((e.status ?? 0) >= 500) return { key: 'errors.internal', params: { requestId: e.requestId ?? '—' } };
  return { key: 'errors.unknown', params: { code: e.code } };
}

/** The message for anything a request threw: an ApiError by its code, anything else as a network failure. */
export function anyErrorMsg(e: unknown): Msg {
  return e instanceof ApiError ? errorMsg(e) : { key: 'errors.network' };
}

/**
 * Field-level errors of a 400 (`details.fields`: `{ field, reason }`, from the server's validation) as
 * messages in the page's language, by field name. The server's reason is English text for developers:
 * it is matched against known kinds of problem here (out of range, too long, in the past…), anything else
 * is "not valid". A nested field (`scope.schoolIds.0`) counts for its first part too.
 */
export function fieldErrors(e: unknown, fallback: Record<string, MessageKey> = {}): Record<string, Msg> {
  const out: Record<string, Msg> = {};
  if (!(e instanceof ApiError) || e.status !== 400) return out;
  const list = (e.details?.fields ?? []) as { field?: unknown; reason?: unknown }[];
  for (const f of list) {
    if (typeof f?.field !== 'string') continue;
    const reason = typeof f.reason === 'string' ? f.reason : '';
    const head0 = f.field.split('.')[0];
    const msg: Msg = reasonMsg(reason) ?? { key: fallback[f.field] ?? fallback[head0] ?? 'fieldErrors.invalid' };
    out[f.field] ??= msg;
    const head = f.field.split('.')[0];
    out[head] ??= msg;
  }
  return out;
}

/** The message for a server's field reason, with its number (days, minutes) where the reason gives one; null when unknown. */
function reasonMsg(reason: string): Msg | null {
  for (const [re, key] of FIELD_REASONS) {
    const m = re.exec(reason);
    if (m) return m[1] ? { key, params: { n: Number(m[1]) } } : { key };
  }
  return null;
}

/** Known kinds of reason (the first match wins); a capture group is the `{n}` of the message. */
const FIELD_REASONS: [RegExp, MessageKey][] = [
  [/须上传退回后的新照片/, 'fieldErrors.photoBeforeReopen'],
  // Notification channels and escalation policies (channels.service.ts, policy.service.ts, users.ts).
  [/needs a secret of at least (\d+) characters/i, 'fieldErrors.minSecret'],
  [/^must be a URL$|^must be http or https$/i, 'fieldErrors.url'],
  [/must not carry a user name or password/i, 'fieldErrors.urlCredentials'],
  [/control or invisible formatting characters/i, 'fieldErrors.invisible'],
  [/must name at least one channel, or be left out/i, 'fieldErrors.noChannelForPeople'],
  [/must be at most (\d+) characters as JSON/i, 'fieldErrors.templateTooLong'],
  [/must be https in production/i, 'fieldErrors.https'],
  [/not a provider's address/i, 'fieldErrors.privateAddress'],
  [/could not be checked/i, 'fieldErrors.unresolvedHost'],
  [/only an SMS gateway takes a template/i, 'fieldErrors.smsOnly'],
  [/^no such channel$/i, 'fieldErrors.noChannel'],
  [/^no such user$/i, 'fieldErrors.noUser'],
  [/^the user is disabled$/i, 'fieldErrors.userDisabled'],
  [/must be a control-center user/i, 'fieldErrors.notDutyUser'],
  [/escalates (\d+) time\(s\)/i, 'fieldErrors.levelCount'],
  [/required for kind/i, 'fieldErrors.required'],
  [/not photos of this task/i, 'fieldErrors.photoNotOfTask'],
  [/at least one photo/i, 'fieldErrors.photoNeeded'],
  [/must not be blank|不能为空白/i, 'fieldErrors.blank'],
  [/must be in the future: a shift that has ended/i, 'fieldErrors.shiftEnded'],
  [/must be in the future/i, 'fieldErrors.future'],
  [/lasts at most (\d+) days/i, 'fieldErrors.tooManyDays'],
  [/more than (\d+) minutes in the past/i, 'fieldErrors.backdated'],
  [/should not be empty|must not be empty|must be longer than or equal to 1|is required|should not be null/i, 'fieldErrors.required'],
  [/longer than or equal to|shorter than or equal to|characters/i, 'fieldErrors.tooLong'],
  [/minutes in the past|must not be in the past/i, 'fieldErrors.past'],
  [/days ahead/i, 'fieldErrors.tooFar'],
  [/hours after/i, 'fieldErrors.tooLongWindow'],
  [/must be after|not be before/i, 'fieldErrors.beforeStart'],
  [/has started/i, 'fieldErrors.started'],
  [/no such device|not a device of/i, 'fieldErrors.noDevice'],
  [/no such school/i, 'fieldErrors.noSchool'],
  [/more often than/i, 'fieldErrors.cronTooOften'],
  [/required for scope|must be empty for the whole district/i, 'fieldErrors.scopeIds'],
  [/at least 1 element|should not be empty/i, 'fieldErrors.required'],
];
