import type { Msg } from '@/i18n';
import type { MessageKey } from '@/i18n/zh-CN';

/** A failed request or socket action: the server's stable `code` (errors.ts), never its English message. */
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

const BY_CODE: Record<string, MessageKey> = {
  'ALARM.ALREADY_ACKNOWLEDGED': 'errors.alreadyAcknowledged',
  'ALARM.INVALID_TRANSITION': 'errors.invalidTransition',
  'ALARM.LATCHED': 'errors.latched',
  'ALARM.CONCURRENT_CHANGE': 'errors.concurrentChange',
  'AUTH.ROLE_FORBIDDEN': 'errors.roleForbidden',
  'AUTH.OUT_OF_SCOPE': 'errors.outOfScope',
  'AUTH.FORBIDDEN': 'errors.forbidden',
  'AUTH.UNAUTHENTICATED': 'errors.unauthenticated',
  'AUTH.TOKEN_EXPIRED': 'errors.tokenExpired',
  'AUTH.TOKEN_INVALID': 'errors.tokenExpired',
  'AUTH.TOKEN_REVOKED': 'errors.tokenRevoked',
  'AUTH.REFRESH_INVALID': 'errors.tokenExpired',
  'AUTH.REFRESH_REUSED': 'errors.tokenRevoked',
  'AUTH.INVALID_CREDENTIALS': 'errors.invalidCredentials',
  'AUTH.TOO_MANY_ATTEMPTS': 'errors.tooManyAttempts',
  VALIDATION_FAILED: 'errors.validation',
  BAD_REQUEST: 'errors.validation',
  MALFORMED_BODY: 'errors.validation',
  NOT_FOUND: 'errors.notFound',
  NETWORK: 'errors.network',
  TIMEOUT: 'errors.timeout',
  UNAVAILABLE: 'errors.unavailable',
};

/** The message for an error code, in the page's language (codes ending in .NOT_FOUND included). */
export function errorMsg(e: { code: string; details?: Record<string, unknown>; requestId?: string; status?: number }): Msg {
  if (e.code === 'ALARM.ALREADY_ACKNOWLEDGED') {
    const by = (e.details?.acknowledgedBy as { name?: unknown } | undefined)?.name;
    return { key: 'errors.alreadyAcknowledged', params: { name: typeof by === 'string' && by ? by : '—' } };
  }
  const key = BY_CODE[e.code] ?? (e.code.endsWith('.NOT_FOUND') ? 'errors.notFound' : null);
  if (key) return { key };
  if (e.status === 503) return { key: 'errors.unavailable' };
  if (e.code === 'INTERNAL' || (e.status ?? 0) >= 500) return { key: 'errors.internal', params: { requestId: e.requestId ?? '—' } };
  return { key: 'errors.unknown', params: { code: e.code } };
}
