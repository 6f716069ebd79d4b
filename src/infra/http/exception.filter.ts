import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { boundDetails, DomainError, ErrorCode, excerpt } from './errors';
import { noSuchRoute } from './fallback';
import { fromPostgres } from './pg-errors';
import { fromUnavailable } from './unavailable';
import { currentContext } from './request-context';

interface ErrorBody {
  code: ErrorCode | `HTTP_${number}`;
  message: string;
  requestId?: string;
  details?: Record<string, unknown>;
}

/**
 * One error shape for every route. Never leaks internals on a 500: the response carries the
 * request id, the log carries the stack. Never echoes unbounded input: the message and every
 * string in `details` are cut to a short excerpt (errors.ts boundDetails).
 */
@Catch()
export class GlobalExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw exception;
    const res = host.switchToHttp().getResponse<Response>();
    const req = host.switchToHttp().getRequest<Request>();
    const requestId = currentContext()?.requestId ?? (req.headers['x-request-id'] as string | undefined);
    let status: number = HttpStatus.INTERNAL_SERVER_ERROR;
    let body: ErrorBody = { code: ErrorCode.INTERNAL, message: 'Internal error; quote the request id when reporting it' };

    // Bad input that only Postgres caught (constraint, data exception) is answered like ours.
    // A store that did not answer is a retryable 503, not a 500 (unavailable.ts).
    const domain = exception instanceof DomainError ? exception : (fromPostgres(exception) ?? fromUnavailable(exception));
    if (domain) {
      status = domain.status;
      body = { code: domain.code, message: domain.message, details: domain.details && (boundDetails(domain.details) as Record<string, unknown>) };
      const retry = domain.details?.retryAfterSeconds;
      if (typeof retry === 'number') res.setHeader('Retry-After', String(retry));
    } else if (exception instanceof HttpException && exception.cause instanceof URIError) {
      // The router could not decode a path parameter (`/cameras/%E0%A4%A`): Express's words ("Failed to decode param…") are not ours.
      status = HttpStatus.BAD_REQUEST;
      body = {
        code: ErrorCode.VALIDATION_FAILED,
        message: 'The URL is not valid percent-encoding',
        details: { fields: [{ field: '(path)', reason: 'is not valid percent-encoded UTF-8' }] },
      };
    } else if (exception instanceof HttpException) {
      status = exception.getStatus();
      const r = exception.getResponse();
      const message = typeof r === 'string' ? r : ((r as { message?: unknown }).message ?? exception.message);
      body = { code: httpCode(status), message: Array.isArray(message) ? message.join('; ') : String(message) };
      // Nest's router's "Cannot GET /x": the same words as a path outside /api/v1 gets (fallback.ts).
      if (status === 404 && /^Cannot [A-Z]+ /.test(body.message)) body.message = noSuchRoute(req);
    } else if (isBodyParserError(exception)) {
      status = exception.status;
      body = {
        code: status === 413 ? ErrorCode.PAYLOAD_TOO_LARGE : ErrorCode.MALFORMED_BODY,
        message: status === 413 ? 'Request body too large' : 'Request body is not valid JSON',
      };
    }
    // A 5xx we chose to answer (a store that did not answer, a camera offline or silent) is expected: one line at
    // warn. Only what we did not foresee is an error with its stack, for the engineer on call.
    if (status >= 500 && domain)
      this.logger.warn(
        `${req.method} ${excerpt(req.url, 300)}: ${domain.code} (${excerpt(exception instanceof Error ? exception.message : String(exception), 300)})`,
      );
    else if (status >= 500) this.logger.error(exception instanceof Error ? exception : String(exception), `${req.method} ${req.url}`);
    // What a caller sent is quoted back only as a short excerpt, whatever route built the error.
    body.message = excerpt(body.message, 1000);
    if (!res.headersSent) res.status(status).json({ error: { ...body, requestId } });
  }
}

function isBodyParserError(e: unknown): e is { status: number; type: string } {
  return typeof e === 'object' && e !== null && typeof (e as { type?: unknown }).type === 'string' && typeof (e as { status?: unknown }).status === 'number';
}

function httpCode(status: number): ErrorBody['code'] {
  switch (status) {
    case 400:
      return ErrorCode.HTTP.BAD_REQUEST;
    case 401:
      return ErrorCode.AUTH.UNAUTHENTICATED;
    case 403:
      return ErrorCode.AUTH.FORBIDDEN;
    case 404:
      return ErrorCode.HTTP.NOT_FOUND;
    case 405:
      return ErrorCode.HTTP.METHOD_NOT_ALLOWED;
    case 409:
      return ErrorCode.HTTP.CONFLICT;
    case 413:
      return ErrorCode.PAYLOAD_TOO_LARGE;
    case 415:
      return ErrorCode.HTTP.UNSUPPORTED_MEDIA_TYPE;
    case 429:
      return ErrorCode.HTTP.RATE_LIMITED;
    default:
      return status >= 500 ? ErrorCode.INTERNAL : `HTTP_${status}`;
  }
}
