import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { static as serveStatic, Response } from 'express';

/** The player files: next to the compiled module (npm run build copies them), else the source folder. */
export function playerDir(): string | null {
  const candidates = [join(__dirname, 'player'), join(__dirname, '..', '..', '..', 'src', 'modules', 'video', 'player')];
  return candidates.find((d) => existsSync(join(d, 'player.js'))) ?? null;
}

/**
 * Serves the minimal live player at /console/player/ (its own page until the Vue console embeds
 * `player.js`), with the console's strict CSP plus `media-src blob:` — Media Source Extensions
 * hand the <video> a blob: URL.
 */
@Injectable()
export class PlayerWebService implements OnModuleInit {
  constructor(private readonly host: HttpAdapterHost) {}

  onModuleInit(): void {
    const app = this.host.httpAdapter?.getInstance?.();
    if (!app) return;
    const dir = playerDir();
    if (!dir) {
      new Logger('VideoPlayer').warn('player files not found; /console/player is not served');
      return;
    }
    const headers = (res: Response) => {
      res.setHeader(
        'Content-Security-Policy',
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; media-src 'self' blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
      );
      res.setHeader('X-Content-Type-Options', 'nosniff');
    };
    app.use('/console/player', serveStatic(dir, { index: 'index.html', setHeaders: headers, maxAge: 0, redirect: true }));
  }
}
