import { HttpStatus } from '@nestjs/common';

export interface FieldError {
  field: string;
  /** Row number (1-based, header = row 1) when the error comes from an imported file. */
  row?: number;
  reason: string;
}

/**
 * A failure the caller can act on. `code` is stable (clients and tests match on it);
 * `message` is for people. The global filter turns it into
 * `{ error: { code, message, requestId, details? } }` with `status`.
 */
export class DomainError extends Error {
  constructor(
    public readonly status: HttpStatus,
    public readonly code: string,
    message: string,
    public readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const Errors = {
  validation: (fields: FieldError[], message = 'Request is invalid') =>
    new DomainError(HttpStatus.BAD_REQUEST, 'VALIDATION_FAILED', message, { fields }),
  badRequest: (code: string, message: string, details?: Record<string, unknown>) =>
    new DomainError(HttpStatus.BAD_REQUEST, code, message, details),
  unauthorized: (code = 'AUTH.UNAUTHENTICATED', message = 'Authentication required') =>
    new DomainError(HttpStatus.UNAUTHORIZED, code, message),
  forbidden: (code = 'AUTH.FORBIDDEN', message = 'Not allowed') => new DomainError(HttpStatus.FORBIDDEN, code, message),
  outOfScope: () => new DomainError(HttpStatus.FORBIDDEN, 'AUTH.OUT_OF_SCOPE', 'This resource belongs to another school'),
  notFound: (entity: string, id?: string) =>
    new DomainError(HttpStatus.NOT_FOUND, `${entity.toUpperCase()}.NOT_FOUND`, `${entity} ${id ?? ''} not found`.replace(/\s+/g, ' ').trim()),
  conflict: (code: string, message: string, details?: Record<string, unknown>) =>
    new DomainError(HttpStatus.CONFLICT, code, message, details),
  tooMany: (code: string, message: string, retryAfterSeconds: number) =>
    new DomainError(HttpStatus.TOO_MANY_REQUESTS, code, message, { retryAfterSeconds }),
  payloadTooLarge: (message: string) => new DomainError(HttpStatus.PAYLOAD_TOO_LARGE, 'PAYLOAD_TOO_LARGE', message),
};
