import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { static as serveStatic, NextFunction, Request, Response } from 'express';

/** The console only talks to its own origin (and video WebSockets); no framing (clickjacking), no inline script or style, no eval; blob: media and images for live video (MSE) and evidence pictures fetched with the session token. */
export const CONSOLE_CSP =
  "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

/**
 * Where the built web console is: dist/console-web, written by `npm run build` (Vite, from web/).
 * The compiled service finds it beside itself; the service run from src/ (tests) finds it in dist/.
 */
export function consoleWebDir(): string | null {
  const candidates = [join(__dirname, '..', '..', 'console-web'), join(__dirname, '..', '..', '..', 'dist', 'console-web')];
  return candidates.find((d) => existsSync(join(d, 'index.html'))) ?? null;
}

const securityHeaders = (res: Response) => {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'same-origin');
};

/**
 * Serves the web console (a single-page app) under /console with a strict CSP:
 * - /console/assets/* are content-hashed: cached for a year, and a missing one is a 404 (never
 *   the page, which a browser would try to run as a script);
 * - any other GET under /console that is not a file answers index.html (client-side routes such as
 *   /console/operator survive a reload), never cached, so a new build is picked up at once;
 * - `GET /` redirects to /console/, and /favicon.ico is the console's icon.
 * Without a build (dist/console-web missing) /console answers 503 saying how to build it.
 */
@Injectable()
export class ConsoleWebService implements OnModuleInit {
  private readonly logger = new Logger('ConsoleWeb');

  constructor(private readonly host: HttpAdapterHost) {}

  onModuleInit(): void {
    const app = this.host.httpAdapter?.getInstance?.();
    if (!app) return;
    app.get('/', (_req: Request, res: Response) => res.redirect(302, '/console/'));
    // Relative URLs and the router's base need the trailing slash.
    app.get('/console', (req: Request, res: Response, next: NextFunction) =>
      req.originalUrl.split('?')[0] === '/console' ? res.redirect(301, '/console/') : next(),
    );
    const dir = consoleWebDir();
    if (!dir) {
      this.logger.warn('web console not built (dist/console-web is missing): run `npm run build`; /console answers 503 until then');
      const notBuilt = (_req: Request, res: Response) => {
        securityHeaders(res);
        res.status(503).type('text/plain; charset=utf-8').send('The web console is not built: run `npm run build` (or `npm start`), then reload.\n');
      };
      app.use('/console', notBuilt);
      app.get('/favicon.ico', (_req: Request, res: Response) => res.status(404).end());
      return;
    }
    const index = join(dir, 'index.html');
    const sendIndex = (_req: Request, res: Response) => {
      securityHeaders(res);
      res.setHeader('Cache-Control', 'no-cache');
      res.sendFile(index);
    };
    app.get('/favicon.ico', (_req: Request, res: Response) => {
      res.setHeader('Cache-Control', 'public, max-age=86400');
      res.sendFile(join(dir, 'favicon.ico'));
    });
    app.use(
      '/console/assets',
      serveStatic(join(dir, 'assets'), { index: false, fallthrough: false, immutable: true, maxAge: '365d', setHeaders: securityHeaders }),
    );
    app.use(
      '/console',
      serveStatic(dir, {
        index: false,
        maxAge: 0,
        setHeaders: (res) => {
          securityHeaders(res);
          res.setHeader('Cache-Control', 'no-cache');
        },
      }),
    );
    app.get(/^\/console\/.*/, sendIndex);
  }
}
