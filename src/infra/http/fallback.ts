import { randomUUID } from 'node:crypto';
import { type IncomingMessage, STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import { malformedInput } from '../observability/metrics';
import { ErrorCode, excerpt } from './errors';

/**
 * What answers when nothing else did, so that every answer of the service is the API's JSON error
 * envelope `{ error: { code, message, requestId } }` (or the console app, or a socket.io frame) —
 * Express and Node have answers of their own for these, an HTML "Cannot GET" page or an empty body,
 * which clients cannot read and which say what serves them (issue 12, leftover c):
 *
 * - `notFound`: a request no route, static file or dashboard took. Nest answers 404 in our shape
 *   under /api/v1 only; outside it (`GET /%`, `GET //api/v1/x`, `OPTIONS *`, `TRACE /`,
 *   `/health/nope`, `/api/docs/%`) Express's final handler answered with HTML.
 * - `lastError`: an error nothing before it answered (Express's final handler: an HTML page, with
 *   the stack outside production). The exception filter answers the errors of routes and
 *   middleware; this is the net behind it.
 * - `clientErrors`: what Node's HTTP parser refuses before Express sees a request — a request line
 *   and headers past Node's 16 KiB (a very long URL: 431), framing it cannot read (a negative or
 *   doubled Content-Length, a control character in a header, not HTTP at all: 400), a request
 *   that did not arrive within the server's request timeout (408). Node wrote a status line and no
 *   body.
 */
export function installFallbacks(app: NestExpressApplication): void {
  // After Nest's routes and its own handlers (registered by app.init()): last in Express's stack.
  app.use(notFound);
  app.use(lastError);
  const server = app.getHttpServer() as Server;
  clientErrors(server);
  unparseableTargets(server);
  unknownUpgrades(server);
}

/** Upgrade paths something serves: socket.io's (the console) and the video player's (modules/video WS_PATH). */
const UPGRADE_PATHS = [/^\/socket\.io\//, /^\/api\/v1\/video\/ws$/];

/**
 * A WebSocket upgrade to a path nothing serves (`/api/v1/nowhere`, `/console/ws`) got no answer at
 * all: socket.io's engine drops it after a second (attack pass 6 F6). Answered 404 in the envelope.
 * A target that is not a URL is the video listener's (a 400 there).
 */
function unknownUpgrades(server: Server): void {
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://x').pathname;
    } catch {
      return;
    }
    if (UPGRADE_PATHS.some((p) => p.test(path)) || socket.destroyed) return;
    const body = JSON.stringify({ error: { code: ErrorCode.HTTP.NOT_FOUND, message: `No such route: upgrade ${excerpt(path)}`, requestId: randomUUID() } });
    socket.end(
      `HTTP/1.1 404 Not Found\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    setTimeout(() => socket.destroy(), 2000).unref();
  });
}

/** Set on a request whose target Express could not parse (its original target, cut). */
const BAD_TARGET = Symbol('shouhu.badTarget');
/** A path no route serves: a request with an unparseable target goes through Express under it, to `notFound`. */
const BAD_TARGET_PATH = '/.unparseable-request-target';

/**
 * A request target Node takes but Express's router cannot parse (`GET http://[/api`: an absolute form
 * with a broken host) skips every route and middleware, so Express's final handler answered with its
 * HTML page and no request id (attack pass 6 F5). Before Express sees it (a listener ahead of
 * Express's own), such a target is replaced by a path nothing serves, so the request goes through the
 * middleware (request id, logging) to `notFound`, which answers 400 in the envelope.
 */
function unparseableTargets(server: Server): void {
  server.prependListener('request', (req: IncomingMessage & { [BAD_TARGET]?: string }) => {
    const url = req.url ?? '';
    // Origin form (a path) and `*` Express parses; anything else is an absolute form it parses as a URL.
    if (url.startsWith('/') || url === '*') return;
    try {
      new URL(url);
    } catch {
      req[BAD_TARGET] = excerpt(url);
      req.url = BAD_TARGET_PATH;
    }
  });
}

const requestIdOf = (res: Response): string => {
  const id = res.getHeader('X-Request-Id');
  return typeof id === 'string' ? id : randomUUID();
};

/** The message of every 404 for a path nothing serves. */
export const noSuchRoute = (req: Request): string =>
  // originalUrl: req.path is relative to where a router is mounted (`/video/ws` for /api/v1/video/ws, attack pass 6 F6).
  `No such route: ${excerpt(req.method, 20)} ${excerpt((req.originalUrl || req.url).split('?')[0])}`;

function notFound(req: Request & { [BAD_TARGET]?: string }, res: Response): void {
  if (req[BAD_TARGET] !== undefined) {
    res.status(400).json({ error: { code: ErrorCode.HTTP.BAD_REQUEST, message: 'The request target is not a valid URL', requestId: requestIdOf(res) } });
    return;
  }
  res.status(404).json({ error: { code: ErrorCode.HTTP.NOT_FOUND, message: noSuchRoute(req), requestId: requestIdOf(res) } });
}

function lastError(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) return next(err); // Express ends the connection: nothing more can be said on it
  const status = (err as { status?: unknown; statusCode?: unknown } | null)?.status ?? (err as { statusCode?: unknown } | null)?.statusCode;
  // A status an error carries (http-errors, Express's own) is kept only when it is a client error; its message is not ours: not sent.
  const clientFault = typeof status === 'number' && status >= 400 && status < 500;
  res.status(clientFault ? status : 500).json({
    error: clientFault
      ? { code: ErrorCode.HTTP.BAD_REQUEST, message: 'The request could not be served', requestId: requestIdOf(res) }
      : { code: ErrorCode.INTERNAL, message: 'Internal error; quote the request id when reporting it', requestId: requestIdOf(res) },
  });
}

/** Node's HTTP parser's refusals (error codes of llhttp and of the server's timeouts) as status, code and our words. */
const PARSER_REFUSALS: Record<string, [number, ErrorCode, string]> = {
  HPE_HEADER_OVERFLOW: [431, ErrorCode.HTTP.REQUEST_HEADERS_TOO_LARGE, 'The request line and headers are longer than the server takes (16 KiB)'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, ErrorCode.PAYLOAD_TOO_LARGE, 'Chunk extensions are longer than the server takes'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, ErrorCode.HTTP.REQUEST_TIMEOUT, 'The request did not arrive in time'],
};
const NOT_HTTP: [number, ErrorCode, string] = [400, ErrorCode.HTTP.BAD_REQUEST, 'The request is not valid HTTP/1.1'];

/**
 * Answers a request Node's parser refused in our envelope, then closes the connection — as Node's own
 * handler does (lib/_http_server.js socketOnError), including when not to write: a reset or closed
 * socket, or a response already under way on it (a pipelined request), is only destroyed.
 */
function clientErrors(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const [status, code, message] = PARSER_REFUSALS[err.code ?? ''] ?? NOT_HTTP;
    malformedInput.inc({ source: 'http', reason: status === 431 ? 'headers_too_large' : status === 408 ? 'request_timeout' : 'not_http' });
    const body = JSON.stringify({ error: { code, message, requestId: randomUUID() } });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    // A peer that never closes its side does not keep the socket: it was refused.
    setTimeout(() => socket.destroy(), 2000).unref();
  });
}
