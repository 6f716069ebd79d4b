import { Controller, HttpCode, HttpStatus, Inject, Injectable, Logger, Post, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Express, NextFunction, Request, Response } from 'express';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { Roles } from '../../infra/access/decorators';
import { boundDetails, DomainError, ErrorCode, Errors, excerpt } from '../../infra/http/errors';
import { currentContext } from '../../infra/http/request-context';
import { JOBS, QueueName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { AuditService } from '../audit-log';
import { TokenService } from '../auth';

/** Where the dashboard is served (outside /api/v1: a page with its own assets, not a JSON route). */
export const QUEUE_BOARD_PATH = '/admin/queues';
/** The cookie the dashboard's page and its requests carry: a dashboard-only token (TokenService.signQueueBoard), for this path only. */
export const QUEUE_BOARD_COOKIE = 'shouhu_queue_board';

/**
 * The SHA-256 hashes (CSP source form) of the fixed <style> blocks bull-board's own bundle renders
 * (its Redis logo is an SVG with one): allowed by hash, so no inline style but those exact ones runs.
 * Read once from the installed bundle; none found (another version): the logo is unstyled, nothing breaks.
 */
export function boardStyleHashes(): string[] {
  try {
    const dir = join(dirname(require.resolve('@bull-board/ui/package.json')), 'dist', 'static', 'js');
    const out = new Set<string>();
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.js'))) {
      for (const m of readFileSync(join(dir, f), 'utf8').matchAll(/\("style",\{children:`([^`$]*)`\}\)/g))
        out.add(`'sha256-${createHash('sha256').update(m[1]).digest('base64')}'`);
    }
    return [...out];
  } catch {
    return [];
  }
}

/**
 * The dashboard's headers: the console's strict policy (own scripts and styles only, no inline
 * code, no inline style but bull-board's own fixed blocks by hash, no eval, no framing);
 * `base-uri 'self'` for the page's <base href>.
 */
export const QUEUE_BOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  ["style-src 'self'", ...boardStyleHashes()].join(' '),
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * bull-board's page as we serve it: without the web font from fonts.googleapis.com (the CSP
 * allows no other origin) and without the inline-styled "Loading" placeholder (the CSP allows
 * no inline style); the app replaces that placeholder anyway.
 */
export function cleanBoardPage(html: string): string {
  return html
    .replace(/<link[^>]+fonts\.googleapis\.com[^>]*>\s*/g, '')
    .replace(/(<div id="root">)[\s\S]*?(<\/div>\s*<script)/, (_m, open: string, close: string) => `${open}${close}`);
}

/**
 * The only changes the dashboard offers here (an allow-list: anything else that is not a read is
 * refused, 403 QUEUE_BOARD.NOT_OFFERED): retry, promote and clean — of a queue's jobs in a state, or of
 * one job —, pausing or resuming one queue, pausing or resuming all. Not offered: adding a job of any name
 * and payload (the handlers trust what the outbox wrote), emptying or obliterating a queue, concurrency and
 * rate limits (set by config), removing, changing or running job schedulers (the liveness sweep,
 * retention…), editing a job's data, delay or priority, metrics purges. Matched on the decoded, lower-cased
 * path: the dashboard's router is case-insensitive (attack pass 2: `…/video/OBLITERATE` got through a
 * case-sensitive deny-list). What is offered is then held to PROTECTED_QUEUES (queueBoardRefusal).
 */
const ALLOWED_CHANGES = [
  /^\/api\/queues\/[^/]+\/(pause|resume|promote)$/,
  /^\/api\/queues\/(pause|resume)$/,
  /^\/api\/queues\/[^/]+\/(retry|clean)\/[a-z-]+$/,
  /^\/api\/queues\/[^/]+\/[^/]+\/(retry|clean|promote)$/,
];

/**
 * Queues whose pending jobs must not be dropped or held back: the queues of the jobs the catalogue marks
 * `duringOutage` (a person or the police must hear of an alarm) — alarms (escalations, relay watches),
 * police-relay and notifications. Their jobs are fed from the alarm outbox, and a job deleted from Redis is
 * re-created only by the outbox relay's re-dispatch (AlarmsOutboxService.relayOnce), which takes a row only
 * once it is alarms.outbox.redispatchAfterMs (30 s) past its due time: an escalation cleaned from the delayed
 * jobs called the supervisor 30 s late, about a minute after the alarm (attack pass 3). Making that sweep
 * faster would cost a Redis lookup per pending row per pass; refusing the action keeps the timers instead.
 * So on these queues the dashboard may make work run (resume, retry, promote) and drop finished jobs
 * (clean completed or failed: the relay retries or re-creates an unfinished row's failed job anyway), never
 * drop or hold back pending ones: no pause (of the queue, or of every queue at once), no clean of waiting,
 * delayed, active, paused or prioritized jobs, no removal of a job (its state is not known here).
 * Resuming — one queue or all — is always allowed: it only lets work run sooner.
 */
export const PROTECTED_QUEUES: ReadonlySet<string> = new Set(
  Object.values(JOBS)
    .filter((j) => j.duringOutage)
    .map((j) => j.queue),
);
/** Job states whose jobs are finished: cleaning them drops history, never work. */
const FINISHED_STATES = new Set(['completed', 'failed']);

/** The decoded, lower-cased path without trailing slashes; null when it does not decode. */
function boardPath(path: string): string | null {
  try {
    return decodeURIComponent(path).toLowerCase().replace(/\/+$/, '');
  } catch {
    return null;
  }
}

/** Whether a non-read request to the dashboard is one of ALLOWED_CHANGES (a path that does not decode is not). */
export function queueBoardChangeAllowed(method: string, path: string): boolean {
  const p = boardPath(path);
  return method === 'PUT' && p !== null && ALLOWED_CHANGES.some((r) => r.test(p));
}

/**
 * Why a non-read request to the dashboard is refused, or null when it may go on: 403
 * QUEUE_BOARD.NOT_OFFERED outside ALLOWED_CHANGES, 409 QUEUE_BOARD.PROTECTED_QUEUE for what would drop
 * or hold back pending jobs of one of PROTECTED_QUEUES (see there).
 */
export function queueBoardRefusal(method: string, path: string): DomainError | null {
  if (!queueBoardChangeAllowed(method, path))
    return Errors.forbidden(
      ErrorCode.QUEUE_BOARD.NOT_OFFERED,
      'This queue dashboard action is not offered here (only retry, promote, clean, pause and resume)',
    );
  const p = boardPath(path)!;
  const protectedList = [...PROTECTED_QUEUES].join(', ');
  const refuse = (queue: string, action: string, why: string) =>
    new DomainError(HttpStatus.CONFLICT, ErrorCode.QUEUE_BOARD.PROTECTED_QUEUE, why, { queue, action });
  if (p === '/api/queues/pause')
    return refuse(
      '*',
      'pause',
      `Pausing every queue would pause ${protectedList}, whose escalations, police deliveries and messages must not wait: pause other queues one by one`,
    );
  const [, , , queue, a, b] = p.split('/');
  if (!PROTECTED_QUEUES.has(queue)) return null;
  if (a === 'pause' && b === undefined)
    return refuse(queue, 'pause', `Queue ${queue} cannot be paused: its escalations, police deliveries and messages must not wait`);
  if (a === 'clean' && !FINISHED_STATES.has(b))
    return refuse(
      queue,
      `clean ${b}`,
      `Queue ${queue}: only completed or failed jobs can be cleaned — its ${b} jobs are escalations, police deliveries or messages still to come`,
    );
  if (b === 'clean')
    return refuse(
      queue,
      'remove',
      `Queue ${queue}: its jobs cannot be removed one by one (an unfinished one would be an escalation or delivery lost); clean its completed or failed jobs instead`,
    );
  return null;
}

/**
 * The origin a state-changing request to the dashboard came from: its Origin header, or else its
 * Referer's origin; null when it has neither (or they do not parse). Browsers send Origin with every
 * PUT/POST/DELETE they make, so only a non-browser client (which holds no victim's cookie) sends none.
 */
export function requestOrigin(req: Pick<Request, 'headers'>): string | null {
  const origin = req.headers.origin;
  if (typeof origin === 'string' && origin !== '') return origin === 'null' ? null : origin.toLowerCase();
  const referer = req.headers.referer;
  if (typeof referer !== 'string' || referer === '') return null;
  try {
    return new URL(referer).origin.toLowerCase();
  } catch {
    return null;
  }
}

/**
 * This server's origins: the one the request was addressed to (scheme as Express sees it, behind
 * `trust proxy` too, and the Host header — a cross-site page cannot make a browser send another
 * server's Host) and the configured public address of the console (notifications.publicBaseUrl).
 */
export function serverOrigins(req: Pick<Request, 'protocol'> & { get(name: string): string | undefined }, publicBaseUrl: string): string[] {
  const out: string[] = [];
  const host = req.get('host');
  if (host) out.push(`${req.protocol}://${host}`.toLowerCase());
  try {
    if (publicBaseUrl) out.push(new URL(publicBaseUrl).origin.toLowerCase());
  } catch {
    /* not a URL: only the request's own origin counts */
  }
  return out;
}

/** An error in the API's envelope (exception.filter.ts): `{ error: { code, message, details?, requestId } }`. */
function answer(res: Response, err: DomainError): void {
  if (res.headersSent) return;
  const details = err.details && (boundDetails(err.details) as Record<string, unknown>);
  res.status(err.status).json({ error: { code: err.code, message: excerpt(err.message, 1000), details, requestId: res.getHeader('X-Request-Id') } });
}

/** A cookie's value, or null when it is absent or does not decode (attack pass 4: `%E0%A4%A` threw, and the process died). */
function readCookie(req: Request, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) {
      try {
        return decodeURIComponent(part.slice(i + 1).trim());
      } catch {
        return null;
      }
    }
  }
  return null;
}

/**
 * The queue dashboard (bull-board, issue 13) for admins: every BullMQ queue of the service, its
 * jobs, retries and failures, at /admin/queues. Behind the app's own login: the console (an admin's
 * session) asks `POST /api/v1/ops/queue-board/session`, which sets an HttpOnly, SameSite=Strict
 * cookie (Secure over https) for this path only, holding a token valid for the dashboard only
 * (its own audience and purpose; ops.queueBoardTtlSeconds, never past the session; revoked with
 * it) — not the session's access token, which the dashboard refuses as the API refuses this one.
 * Every request to the dashboard (page, assets, its API) is checked — expired or revoked (logout):
 * 401, any other role: 403 — and a change whose Origin (or Referer) is not this server's is
 * refused (403, cross-site request forgery). Served with the console's strict CSP. What an admin asks to change through it
 * (retry, clean, pause…) is audited first (`queue_board`); anything not in ALLOWED_CHANGES is refused (403), and so is
 * what would drop or hold back pending jobs of PROTECTED_QUEUES (409). A path it does not serve is a JSON 404.
 */
@Injectable()
export class QueueBoard {
  private readonly logger = new Logger('QueueBoard');
  private router: Express | null = null;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly queues: QueueService,
    private readonly tokens: TokenService,
    private readonly audit: AuditService,
    @InjectDataSource() private readonly db: DataSource,
  ) {}

  /** The bull-board app, made on first use (no queue connection is opened for a dashboard nobody opens). */
  private board(): Express {
    if (this.router) return this.router;
    const adapter = new ExpressAdapter();
    adapter.setBasePath(QUEUE_BOARD_PATH);
    createBullBoard({
      queues: Object.values(QueueName).map((n) => new BullMQAdapter(this.queues.queue(n))),
      serverAdapter: adapter,
      options: { uiConfig: { boardTitle: 'Shouhu 队列' } },
    });
    const app = adapter.getRouter() as Express;
    // Its page through cleanBoardPage: the engine bull-board registered (ejs), its output cleaned.
    type Render = (path: string, options: object, cb: (e: Error | null, html?: string) => void) => void;
    const render = (app as unknown as { engines: Record<string, Render> }).engines['.ejs'];
    app.engine('ejs', (path: string, options: object, cb: (e: unknown, html?: string) => void) =>
      render(path, options, (err, html) => cb(err, html === undefined ? undefined : cleanBoardPage(html))),
    );
    this.router = app;
    return app;
  }

  /** Mounts the dashboard on the HTTP app (before Nest's routes). */
  mount(app: { use: (path: string, ...h: ((req: Request, res: Response, next: NextFunction) => void)[]) => unknown }): void {
    if (!this.config.ops.queueBoard) return;
    // A failure the handler did not answer goes to Express (next): never an unhandled rejection.
    app.use(QUEUE_BOARD_PATH, (req, res, next) => void this.handle(req, res, next).catch(next));
  }

  private async handle(req: Request, res: Response, next: NextFunction): Promise<void> {
    res.setHeader('Content-Security-Policy', QUEUE_BOARD_CSP);
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // same-origin, not no-referrer: under no-referrer a browser sends `Origin: null` with the
    // dashboard's own PUTs (Fetch standard), and the origin check below would refuse them.
    res.setHeader('Referrer-Policy', 'same-origin');
    res.setHeader('Cache-Control', 'no-store');
    const token = readCookie(req, QUEUE_BOARD_COOKIE);
    try {
      const change = req.method !== 'GET' && req.method !== 'HEAD';
      if (change) {
        const origin = requestOrigin(req);
        if (!origin || !serverOrigins(req, this.config.notifications.publicBaseUrl).includes(origin))
          throw Errors.forbidden(ErrorCode.AUTH.FORBIDDEN, 'Cross-origin request to the queue dashboard refused (its Origin is not this server)');
      }
      if (!token) throw Errors.unauthorized(ErrorCode.AUTH.UNAUTHENTICATED, 'Open the queue dashboard from the console as an admin');
      const user = await this.tokens.verifyQueueBoard(token);
      if (user.role !== 'admin') throw Errors.forbidden(ErrorCode.AUTH.ROLE_FORBIDDEN, `Role ${user.role} may not open the queue dashboard`);
      const ctx = currentContext();
      if (ctx) ctx.actor = { type: 'user', id: user.id, name: user.username };
      if (change) {
        const refusal = queueBoardRefusal(req.method, req.path);
        if (refusal) throw refusal;
        // Audited before it is done (an admin action through the dashboard is never unaudited: no entry, no change).
        await this.db.transaction((m) =>
          this.audit.record(m, { action: 'queue_board', entity: 'queue', entityId: null, after: { method: req.method, path: req.originalUrl } }),
        );
      }
    } catch (e) {
      if (!(e instanceof DomainError)) this.logger.warn(`queue dashboard request refused: ${(e as Error).message}`);
      answer(res, e instanceof DomainError ? e : new DomainError(HttpStatus.SERVICE_UNAVAILABLE, ErrorCode.UNAVAILABLE.DATABASE, 'Try again shortly'));
      return;
    }
    // A path the dashboard does not serve is answered here, in the API's error envelope — not passed on to
    // whatever follows (an HTML "Cannot GET" page).
    this.board()(req, res, (err?: unknown) => {
      if (err) next(err);
      else answer(res, new DomainError(HttpStatus.NOT_FOUND, ErrorCode.HTTP.NOT_FOUND, `No such queue dashboard path: ${req.method} ${req.originalUrl}`));
    });
  }

  /** The cookie for this admin's dashboard session (a dashboard-only token), for the dashboard's path only. */
  setSession(req: Request, res: Response, token: string, ttlSeconds: number): void {
    res.cookie(QUEUE_BOARD_COOKIE, token, {
      httpOnly: true,
      sameSite: 'strict',
      secure: req.secure,
      path: QUEUE_BOARD_PATH,
      maxAge: ttlSeconds * 1000,
    });
  }
}

@ApiTags('ops')
@ApiBearerAuth()
@Controller('ops/queue-board')
export class QueueBoardController {
  constructor(
    private readonly board: QueueBoard,
    private readonly tokens: TokenService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * Opens the queue dashboard for this admin session: sets its cookie (HttpOnly, SameSite=Strict,
   * path /admin/queues, a dashboard-only token for ops.queueBoardTtlSeconds, never past this
   * session) and answers where it is. 404 when ops.queueBoard is off.
   */
  @Roles('admin')
  @Post('session')
  @HttpCode(200)
  async session(@Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<{ url: string; expiresAt: string }> {
    if (!this.config.ops.queueBoard) throw new DomainError(HttpStatus.NOT_FOUND, ErrorCode.HTTP.NOT_FOUND, 'the queue dashboard is off (ops.queueBoard)');
    const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')![1];
    const session = await this.tokens.verifyAccess(token);
    const { token: boardToken, exp } = this.tokens.signQueueBoard(session);
    const ttl = Math.max(1, exp - Math.floor(Date.now() / 1000));
    this.board.setSession(req, res, boardToken, ttl);
    return { url: `${QUEUE_BOARD_PATH}/`, expiresAt: new Date(exp * 1000).toISOString() };
  }
}
