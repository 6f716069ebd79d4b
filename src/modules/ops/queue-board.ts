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
import { DomainError, ErrorCode, Errors } from '../../infra/http/errors';
import { currentContext } from '../../infra/http/request-context';
import { QueueName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { AuditService } from '../audit-log';
import { TokenService } from '../auth';

/** Where the dashboard is served (outside /api/v1: a page with its own assets, not a JSON route). */
export const QUEUE_BOARD_PATH = '/admin/queues';
/** The cookie the dashboard's page and its requests carry: the admin's access token, for this path only. */
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
 * refused): retry, promote and clean — of a queue's jobs in a state, or of one job — and pausing or
 * resuming one queue (resuming all). Not offered: adding a job of any name and payload (the handlers
 * trust what the outbox wrote), emptying or obliterating a queue (escalation timers and police relays
 * would be lost until the next outbox resync), concurrency and rate limits (set by config), removing,
 * changing or running job schedulers (the liveness sweep, retention…), editing a job's data, delay or
 * priority, pausing every queue at once, metrics purges. Matched on the decoded, lower-cased path:
 * the dashboard's router is case-insensitive (attack pass 2: `…/video/OBLITERATE` got through a
 * case-sensitive deny-list).
 */
const ALLOWED_CHANGES = [
  /^\/api\/queues\/[^/]+\/(pause|resume|promote)$/,
  /^\/api\/queues\/resume$/,
  /^\/api\/queues\/[^/]+\/(retry|clean)\/[a-z-]+$/,
  /^\/api\/queues\/[^/]+\/[^/]+\/(retry|clean|promote)$/,
];

/** Whether a non-read request to the dashboard is one of ALLOWED_CHANGES (a path that does not decode is not). */
export function queueBoardChangeAllowed(method: string, path: string): boolean {
  if (method !== 'PUT') return false;
  let p: string;
  try {
    p = decodeURIComponent(path).toLowerCase().replace(/\/+$/, '');
  } catch {
    return false;
  }
  return ALLOWED_CHANGES.some((r) => r.test(p));
}

function readCookie(req: Request, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return null;
}

/**
 * The queue dashboard (bull-board, issue 13) for admins: every BullMQ queue of the service, its
 * jobs, retries and failures, at /admin/queues. Behind the app's own login: the console (an admin's
 * session) asks `POST /api/v1/ops/queue-board/session`, which sets an HttpOnly, SameSite=Strict
 * cookie holding the session's access token for this path only; every request to the dashboard
 * (page, assets, its API) is checked like a bearer token — expired or revoked (logout): 401, any
 * other role: 403. Served with the console's strict CSP. What an admin asks to change through it
 * (retry, clean, pause…) is audited first (`queue_board`); anything not in ALLOWED_CHANGES is refused.
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
    app.use(QUEUE_BOARD_PATH, (req, res, next) => void this.handle(req, res, next));
  }

  private async handle(req: Request, res: Response, next: NextFunction): Promise<void> {
    res.setHeader('Content-Security-Policy', QUEUE_BOARD_CSP);
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cache-Control', 'no-store');
    const token = readCookie(req, QUEUE_BOARD_COOKIE);
    try {
      if (!token) throw Errors.unauthorized(ErrorCode.AUTH.UNAUTHENTICATED, 'Open the queue dashboard from the console as an admin');
      const user = await this.tokens.verifyAccess(token);
      if (user.role !== 'admin') throw Errors.forbidden(ErrorCode.AUTH.ROLE_FORBIDDEN, `Role ${user.role} may not open the queue dashboard`);
      const ctx = currentContext();
      if (ctx) ctx.actor = { type: 'user', id: user.id, name: user.username };
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        if (!queueBoardChangeAllowed(req.method, req.path))
          throw Errors.forbidden(ErrorCode.AUTH.FORBIDDEN, 'This queue dashboard action is not offered here (only retry, promote, clean, pause and resume)');
        // Audited before it is done (an admin action through the dashboard is never unaudited: no entry, no change).
        await this.db.transaction((m) =>
          this.audit.record(m, { action: 'queue_board', entity: 'queue', entityId: null, after: { method: req.method, path: req.originalUrl } }),
        );
      }
    } catch (e) {
      if (!(e instanceof DomainError)) this.logger.warn(`queue dashboard request refused: ${(e as Error).message}`);
      const err = e instanceof DomainError ? e : new DomainError(HttpStatus.SERVICE_UNAVAILABLE, ErrorCode.UNAVAILABLE.DATABASE, 'Try again shortly');
      res.status(err.status).json({ error: { code: err.code, message: err.message, requestId: res.getHeader('X-Request-Id') } });
      return;
    }
    this.board()(req, res, next);
  }

  /** The cookie for this admin's session (its access token), for the dashboard's path only. */
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
   * path /admin/queues, as long as the access token lives) and answers where it is. 404 when
   * ops.queueBoard is off.
   */
  @Roles('admin')
  @Post('session')
  @HttpCode(200)
  async session(@Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<{ url: string; expiresAt: string }> {
    if (!this.config.ops.queueBoard) throw new DomainError(HttpStatus.NOT_FOUND, ErrorCode.HTTP.NOT_FOUND, 'the queue dashboard is off (ops.queueBoard)');
    const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')![1];
    const { exp } = await this.tokens.verifyAccess(token);
    const ttl = Math.max(1, exp - Math.floor(Date.now() / 1000));
    this.board.setSession(req, res, token, ttl);
    return { url: `${QUEUE_BOARD_PATH}/`, expiresAt: new Date(exp * 1000).toISOString() };
  }
}
