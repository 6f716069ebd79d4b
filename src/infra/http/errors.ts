import { HttpStatus } from '@nestjs/common';
import { ErrorCode, NotFoundCode } from './error-codes';

export { ErrorCode } from './error-codes';

export interface FieldError {
  field: string;
  /** Row number (1-based, header = row 1) when the error comes from an imported file. */
  row?: number;
  reason: string;
}

/**
 * A failure the caller can act on. `code` is stable (clients and tests match on it) and comes
 * from the catalogue (error-codes.ts);
 * `message` is for people. The global filter turns it into
 * `{ error: { code, message, requestId, details? } }` with `status`.
 */
export class DomainError extends Error {
  constructor(
    public readonly status: HttpStatus,
    public readonly code: ErrorCode,
    message: string,
    public readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const Errors = {
  validation: (fields: FieldError[], message = 'Request is invalid') =>
    new DomainError(HttpStatus.BAD_REQUEST, ErrorCode.VALIDATION_FAILED, message, { fields }),
  badRequest: (code: ErrorCode, message: string, details?: Record<string, unknown>) => new DomainError(HttpStatus.BAD_REQUEST, code, message, details),
  unauthorized: (code: ErrorCode = ErrorCode.AUTH.UNAUTHENTICATED, message = 'Authentication required') =>
    new DomainError(HttpStatus.UNAUTHORIZED, code, message),
  forbidden: (code: ErrorCode = ErrorCode.AUTH.FORBIDDEN, message = 'Not allowed') => new DomainError(HttpStatus.FORBIDDEN, code, message),
  outOfScope: () => new DomainError(HttpStatus.FORBIDDEN, ErrorCode.AUTH.OUT_OF_SCOPE, 'This resource belongs to another school'),
  /** 404 `<ENTITY>.NOT_FOUND`, with the message "<entity> <id> not found". */
  notFound: (code: NotFoundCode, id?: string) =>
    new DomainError(HttpStatus.NOT_FOUND, code, `${code.slice(0, -'.NOT_FOUND'.length).toLowerCase()} ${id ?? ''} not found`.replace(/\s+/g, ' ').trim()),
  conflict: (code: ErrorCode, message: string, details?: Record<string, unknown>) => new DomainError(HttpStatus.CONFLICT, code, message, details),
  gone: (code: ErrorCode, message: string) => new DomainError(HttpStatus.GONE, code, message),
  tooMany: (code: ErrorCode, message: string, retryAfterSeconds: number) => new DomainError(HttpStatus.TOO_MANY_REQUESTS, code, message, { retryAfterSeconds }),
  payloadTooLarge: (message: string) => new DomainError(HttpStatus.PAYLOAD_TOO_LARGE, ErrorCode.PAYLOAD_TOO_LARGE, message),
};
