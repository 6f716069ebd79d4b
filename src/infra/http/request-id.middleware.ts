import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { requestContext } from './request-context';

const VALID_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Accepts a caller's X-Request-Id (if sane) or makes one; every log line and error carries it. The
 * first middleware: it also stamps when the request arrived (RequestContext.receivedAt), before any body is read.
 */
export function requestIdMiddleware(req: Request, res: Response, next: NextFunction): void {
  const receivedAt = new Date();
  const given = req.headers['x-request-id'];
  const requestId = typeof given === 'string' && VALID_ID.test(given) ? given : randomUUID();
  res.setHeader('X-Request-Id', requestId);
  requestContext.run({ requestId, ip: req.ip ?? null, receivedAt }, next);
}
