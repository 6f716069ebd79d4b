import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { static as serveStatic, Request, Response, NextFunction } from 'express';

/**
 * Serves the operators' web console (plain HTML/CSS/JS in src/console-web) at /console, and the
 * socket.io browser client (from the socket.io package, a production dependency) under it.
 * `npm run build` copies src/console-web to dist/console-web; a plain `tsc` build (npm start,
 * tests) has no copy, so the source folder is the fallback.
 */
export function consoleWebDir(): string | null {
  const candidates = [join(__dirname, '..', '..', 'console-web'), join(__dirname, '..', '..', '..', 'src', 'console-web')];
  return candidates.find((d) => existsSync(join(d, 'index.html'))) ?? null;
}

@Injectable()
export class ConsoleWebService implements OnModuleInit {
  constructor(private readonly host: HttpAdapterHost) {}

  onModuleInit(): void {
    const app = this.host.httpAdapter?.getInstance?.();
    if (!app) return;
    const dir = consoleWebDir();
    if (!dir) {
      new Logger('ConsoleWeb').warn('web console files not found; /console is not served');
      return;
    }
    const clientDir = join(dirname(require.resolve('socket.io/package.json')), 'client-dist');
    const headers = (res: Response) => {
      // The console only talks to its own origin; no framing (clickjacking), no inline script.
      res.setHeader('Content-Security-Policy', "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'");
      res.setHeader('X-Content-Type-Options', 'nosniff');
    };
    // Relative asset URLs need the trailing slash.
    app.get('/console', (req: Request, res: Response, next: NextFunction) => (req.originalUrl.split('?')[0] === '/console' ? res.redirect(301, '/console/') : next()));
    app.use('/console/vendor', serveStatic(clientDir, { index: false, setHeaders: headers, maxAge: '1d' }));
    app.use('/console', serveStatic(dir, { index: 'index.html', setHeaders: headers, maxAge: 0 }));
  }
}
