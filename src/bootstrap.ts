import { INestApplication, INestApplicationContext, Logger, RequestMethod } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import type Redis from 'ioredis';
import { json, NextFunction, Request, Response, urlencoded } from 'express';
import { malformedInput } from './infra/observability/metrics';
import { AppModule } from './app.module';
import { APP_CONFIG, AppConfig } from './config/config';
import { runMigrations } from './infra/database/data-source';
import { GlobalExceptionFilter } from './infra/http/exception.filter';
import { requestIdMiddleware } from './infra/http/request-id.middleware';
import { makeValidationPipe } from './infra/http/validation';
import { JsonLogger } from './infra/observability/json-logger';
import { ErrorCode } from './infra/http/error-codes';
import { checkEvictionPolicy, REDIS } from './infra/redis/redis.module';
import { UsersService } from './modules/auth';

export const API_PREFIX = 'api/v1';

export class BootError extends Error {}

/** Body-parser failures (bad JSON, too large) answered in the common error shape, never as a 500. */
function bodyErrorHandler(err: { status?: number; type?: string } | undefined, req: Request, res: Response, next: NextFunction): void {
  if (!err || typeof err.status !== 'number' || typeof err.type !== 'string') return next(err);
  const tooLarge = err.status === 413;
  malformedInput.inc({ source: 'http', reason: tooLarge ? 'too_large' : 'bad_body' });
  res.status(tooLarge ? 413 : 400).json({
    error: {
      code: tooLarge ? ErrorCode.PAYLOAD_TOO_LARGE : ErrorCode.MALFORMED_BODY,
      message: tooLarge ? 'Request body too large' : 'Request body could not be parsed (expected JSON)',
      requestId: res.getHeader('X-Request-Id'),
    },
  });
}

/**
 * Configures an HTTP app exactly as production runs it (tests use this too). Returns its OpenAPI
 * document (served at /api/docs; src/tools/openapi.ts builds it without services for the web types).
 */
export function configureHttp(app: NestExpressApplication, config: AppConfig): OpenAPIObject {
  app.set('trust proxy', config.http.trustProxy);
  app.disable('x-powered-by');
  app.use(requestIdMiddleware);
  app.use(json({ limit: `${config.http.bodyLimitKb}kb` }));
  app.use(urlencoded({ extended: false, limit: `${config.http.bodyLimitKb}kb` }));
  app.use(bodyErrorHandler);
  app.setGlobalPrefix(API_PREFIX, {
    exclude: [
      { path: 'health/live', method: RequestMethod.GET },
      { path: 'health/ready', method: RequestMethod.GET },
      { path: 'metrics', method: RequestMethod.GET },
    ],
  });
  app.useGlobalPipes(makeValidationPipe());
  app.useGlobalFilters(new GlobalExceptionFilter());
  app.enableShutdownHooks();
  const doc = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Shouhu (守护) API')
      .setDescription('School-safety monitoring: registry, devices, alarms, console, patrols, compliance')
      .setVersion('1')
      .addBearerAuth()
      .addApiKey({ type: 'apiKey', in: 'header', name: 'Authorization', description: 'Device <keyId>:<secret>' }, 'device')
      .build(),
  );
  SwaggerModule.setup('api/docs', app, doc, { jsonDocumentUrl: 'api/docs-json' });
  return doc;
}

/** Checks run once before serving: Redis eviction policy, migrations, first admin. */
async function prepare(app: INestApplicationContext, config: AppConfig, logger: Logger): Promise<void> {
  const redis = app.get<Redis>(REDIS);
  const problem = await checkEvictionPolicy(redis);
  if (problem) throw new BootError(problem);
  const { bootstrapAdminUsername: user, bootstrapAdminPassword: pass } = config.auth;
  if (user && pass) {
    const result = await app.get(UsersService).ensureAdmin(user, pass);
    if (result === 'created') logger.log(`created the first admin '${user}' from configuration`);
  }
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
  if (opts.migrate !== false) {
    const applied = await runMigrations(config);
    if (applied.length) logger.log(`applied migrations: ${applied.join(', ')}`, 'Boot');
  }
  if (config.role === 'worker') {
    const ctx = await NestFactory.createApplicationContext(AppModule.forRoot(config), { logger, abortOnError: false });
    ctx.enableShutdownHooks();
    await prepare(ctx, config, log).catch(closeAndThrow(ctx));
    await ctx.init();
    logger.log('worker started', 'Boot');
    return ctx;
  }
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), { logger, bodyParser: false, abortOnError: false });
  configureHttp(app, config);
  await prepare(app, config, log).catch(closeAndThrow(app));
  await app.listen(config.http.port, config.http.host);
  logger.log(`${config.role} listening on http://${config.http.host}:${config.http.port} (docs at /api/docs)`, 'Boot');
  return app;
}

export { APP_CONFIG };
