import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { OpenAPIObject } from '@nestjs/swagger';
import { AppModule } from '../app.module';
import { configureHttp } from '../bootstrap';
import { loadConfig } from '../config/config';

/**
 * The HTTP API's OpenAPI document, exactly as /api/docs-json serves it, built without Postgres,
 * Redis or any service: Nest's preview mode scans modules and controllers but instantiates no
 * provider. The configuration is the test one (fixed, independent of the caller's environment)
 * with role `all`, so every controller is in. scripts/web-api-types.js turns it into the web
 * console's request types (web/src/shared/api-schema.d.ts).
 */
export async function buildOpenApiDocument(): Promise<OpenAPIObject> {
  const config = loadConfig({ NODE_ENV: 'test' }, { role: 'all' });
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), {
    preview: true,
    logger: false,
    abortOnError: false,
    bodyParser: false,
  });
  try {
    return configureHttp(app, config);
  } finally {
    await app.close();
  }
}
