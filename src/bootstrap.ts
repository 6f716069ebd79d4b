import { INestApplication, INestApplicationContext, Logger, RequestMethod } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { json, NextFunction, Request, Response } from 'express';
import { DataSource } from 'typeorm';
import { malformedInput } from './infra/observability/metrics';
import { AppModule } from './app.module';
import { APP_CONFIG, AppConfig } from './config/config';
import { runMigrations } from './infra/database/data-source';
import { GlobalExceptionFilter } from './infra/http/exception.filter';
import { installFallbacks } from './infra/http/fallback';
import { requestIdMiddleware } from './infra/http/request-id.middleware';
import { makeValidationPipe } from './infra/http/validation';
import { BODY_ERRORS, jsonOnly, jsonVerifier, textGuard } from './infra/http/input-guards';
import { JsonLogger } from './infra/observability/json-logger';
import { ErrorCode } from './infra/http/error-codes';
import { checkEvictionPolicy, REDIS, type RedisClient } from './infra/redis/redis.module';
import { UsersService } from './modules/auth';
import { QueueBoard } from './modules/ops';
import { BootError, bootListeners, checkPorts, checkRedis, describeBindError } from './preflight';
import { applyResponses } from './infra/http/openapi';
import { OPENAPI_RESPONSES } from './infra/http/openapi-responses.generated';

export const API_PREFIX = 'api/v1';

export { BootError };

/** Body-parser failures (bad JSON, too large, too deep, not UTF-8) answered in the common error shape, never as a 500. */
function bodyErrorHandler(err: { status?: number; type?: string; message?: string } | undefined, req: Request, res: Response, next: NextFunction): void {
  if (!err || typeof err.status !== 'number' || typeof err.type !== 'string') return next(err);
  const ours = BODY_ERRORS[err.type];
  const tooLarge = err.status === 413;
  malformedInput.inc({ source: 'http', reason: ours ? err.type : tooLarge ? 'too_large' : 'bad_body' });
  res.status(ours ? err.status : tooLarge ? 413 : 400).json({
    error: {
      code: ours ?? (tooLarge ? ErrorCode.PAYLOAD_TOO_LARGE : ErrorCode.MALFORMED_BODY),
      message: ours ? err.message : tooLarge ? 'Request body too large' : 'Request body could not be parsed (expected JSON)',
      requestId: res.getHeader('X-Request-Id'),
    },
  });
}

/**
 * The routes that take a multipart file upload instead of JSON (registry import, alarm and rectification task photos).
 * Any id passes here: the route itself answers one that is no UUID (400 on `id`, before the file is read).
 */
const UPLOAD_ROUTES = /^\/api\/v1\/(import\/(?!templates\/)[a-z-]+|(incidents|rectification-tasks)\/[^/]+\/photos)$/i;

/**
 * The device alarm routes (button press, camera/gateway report): they read their own body after the
 * device credential is checked (infra/http/device-body.ts) and are never refused for it — a 4xx is
 * an alarm lost (attack A1). Case-insensitive like Express routing, an optional trailing slash.
 */
export const DEVICE_BODY_ROUTES = /^\/api\/v1\/incidents\/(press|device-reports)\/?$/i;

/** A middleware skipped on the device alarm routes. */
const exceptDeviceRoutes =
  (mw: (req: Request, res: Response, next: NextFunction) => void) =>
  (req: Request, res: Response, next: NextFunction): void =>
    DEVICE_BODY_ROUTES.test(req.path) ? next() : mw(req, res, next);

/**
 * Headers of the OpenAPI UI: its own script and styles only (Swagger UI sets inline styles), no
 * framing (clickjacking), no sniffing.
 */
const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function docsHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Content-Security-Policy', DOCS_CSP);
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  next();
}

/**
 * Configures an HTTP app exactly as production runs it (tests use this too). Returns its OpenAPI
 * document (served at /api/docs; src/tools/openapi.ts builds it without services for the web types).
 */
export function configureHttp(app: NestExpressApplication, config: AppConfig): OpenAPIObject {
  // SHOUHU__HTTP__TRUST_PROXY=2 arrives as the string "2": a hop count, not an address named "2".
  const trustProxy = config.http.trustProxy;
  app.set('trust proxy', typeof trustProxy === 'string' && /^\d+$/.test(trustProxy.trim()) ? Number(trustProxy) : trustProxy);
  app.disable('x-powered-by');
  app.use(requestIdMiddleware);
  // JSON only (no form bodies: a foreign page must not be able to post to us), checked for depth,
  // key count and UTF-8 before it is parsed, and for storable text once it is. Not on the device
  // alarm routes: they read, bound and repair their own bodies once the device is authenticated.
  app.use(exceptDeviceRoutes(jsonOnly(UPLOAD_ROUTES)));
  app.use(
    exceptDeviceRoutes(
      json({
        limit: `${config.http.bodyLimitKb}kb`,
        verify: jsonVerifier({ maxDepth: config.http.jsonMaxDepth, maxKeys: config.http.jsonMaxKeys, maxObjectKeys: config.http.jsonMaxObjectKeys }),
      }),
    ),
  );
  app.use(bodyErrorHandler);
  app.use(exceptDeviceRoutes(textGuard));
  app.setGlobalPrefix(API_PREFIX, {
    exclude: [
      { path: 'health/live', method: RequestMethod.GET },
      { path: 'health/ready', method: RequestMethod.GET },
      { path: 'metrics', method: RequestMethod.GET },
    ],
  });
  app.useGlobalPipes(makeValidationPipe());
  app.useGlobalFilters(new GlobalExceptionFilter());
  // Signals are handled by main.ts (exitOnSignals: a deadline, and what did not close named).
  // Request side from the DTO classes; response side (schemas, error answers) derived from the code by scripts/openapi-responses.js.
  const doc = applyResponses(
    SwaggerModule.createDocument(
      app,
      new DocumentBuilder()
        .setTitle('Shouhu (守护) API')
        .setDescription('School-safety monitoring: registry, devices, alarms, console, patrols, compliance')
        .setVersion('1')
        .addBearerAuth()
        .addApiKey({ type: 'apiKey', in: 'header', name: 'Authorization', description: 'Device <keyId>:<secret>' }, 'device')
        .build(),
    ),
    OPENAPI_RESPONSES,
  );
  // The document tells an attacker every route and field: served only where ops.apiDocs is on (off in production).
  if (config.ops.apiDocs) {
    app.use(['/api/docs', '/api/docs-json'], docsHeaders);
    SwaggerModule.setup('api/docs', app, doc, { jsonDocumentUrl: 'api/docs-json' });
  }
  return doc;
}

/** Checks run once before serving: Redis eviction policy, migrations, first admin. */
async function prepare(app: INestApplicationContext, config: AppConfig, logger: Logger): Promise<void> {
  const redis = app.get<RedisClient>(REDIS);
  const problem = await checkEvictionPolicy(redis);
  if (problem) throw new BootError(problem);
  const { bootstrapAdminUsername: user, bootstrapAdminPassword: pass } = config.auth;
  if (user && pass) {
    const result = await app.get(UsersService).ensureAdmin(user, pass);
    if (result === 'created') logger.log(`created the first admin '${user}' from configuration`);
  }
}

/**
 * Development only: a database without a single school gets one line, after the ready line, saying how to fill
 * it. `npm start` seeds the demo district (demo.seedOnStart); `node dist/main.js` — the image's command, also
 * used in production — never seeds, and a newcomer starting it met an empty console with no word why. A failed
 * check says nothing (it never stops a boot).
 */
async function sayIfEmpty(app: INestApplicationContext, config: AppConfig, logger: JsonLogger): Promise<void> {
  if (config.env !== 'development') return;
  const rows: { any: boolean }[] = await app
    .get(DataSource)
    .query(`SELECT EXISTS (SELECT 1 FROM schools) AS any`)
    .catch(() => [{ any: true }]);
  if (!rows[0]?.any)
    logger.warn(
      'the database is empty (no schools): seed the demo district with `node dist/cli.js seed` (or `npm run seed`), or start with `npm start`, which seeds it',
      'Boot',
    );
}

/** A failed boot must not leave connections retrying in the background. */
const closeAndThrow =
  (app: INestApplicationContext) =>
  async (e: unknown): Promise<never> => {
    await app.close().catch(() => undefined);
    throw e;
  };

/** Boots the process for its role: api and all serve HTTP, worker runs only the job processors. */
export async function bootstrap(config: AppConfig, opts: { migrate?: boolean; logger?: JsonLogger } = {}): Promise<INestApplication | INestApplicationContext> {
  const logger = opts.logger ?? new JsonLogger(config.log.level);
  const log = new Logger('Boot');
  // First what the operator can fix at once — a busy port (fatal), a missing Redis (said once; the
  // service starts without it) — before migrations touch anything.
  await checkPorts(config);
  const noRedis = await checkRedis(config);
  if (noRedis) logger.warn(noRedis, 'Boot');
  if (opts.migrate !== false) {
    const applied = await runMigrations(config);
    if (applied.length) logger.log(`applied migrations: ${applied.join(', ')}`, 'Boot');
  }
  if (config.role === 'worker') {
    const ctx = await NestFactory.createApplicationContext(AppModule.forRoot(config), { logger, abortOnError: false });
    await prepare(ctx, config, log).catch(closeAndThrow(ctx));
    await ctx.init();
    logger.log('ready: worker started (job processors and schedulers)', 'Boot');
    return ctx;
  }
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), { logger, bodyParser: false, abortOnError: false });
  configureHttp(app, config);
  // The admins' queue dashboard (bull-board): a page of its own under /admin/queues, before Nest's routes.
  app.get(QueueBoard).mount(app);
  await prepare(app, config, log).catch(closeAndThrow(app));
  // Routes are registered by init; what answers when none of them did goes after them (fallback.ts).
  await app.init().catch(closeAndThrow(app));
  installFallbacks(app);
  await app.listen(config.http.port, config.http.host).catch(async (e: NodeJS.ErrnoException) => {
    await app.close().catch(() => undefined);
    // Taken between checkPorts and now: the same message as the check's.
    const http = bootListeners(config).find((l) => l.key === 'http.port');
    throw http && (e.code === 'EADDRINUSE' || e.code === 'EACCES') ? new BootError(describeBindError(http, e)) : e;
  });
  logger.log(`ready: ${config.role} listening on http://${config.http.host}:${config.http.port}${config.ops.apiDocs ? ' (docs at /api/docs)' : ''}`, 'Boot');
  await sayIfEmpty(app, config, logger);
  return app;
}

export { APP_CONFIG };
