import { randomUUID } from 'node:crypto';
import { BeforeApplicationShutdown, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { ErrorCode } from '../../infra/http/error-codes';
import { DomainError } from '../../infra/http/errors';
import { malformedInput } from '../../infra/observability/metrics';
import { CLOSE_ERROR } from './live-stream';
import { VideoService, WS_PATH } from './video.service';

/**
 * The players' WebSocket (`/api/v1/video/ws?camera=<id>&token=<stream token>`). The token is
 * checked before the upgrade — a refused request never becomes a socket (401/403 with a JSON
 * body). Then: a text frame `{type:'meta', codec, width, height}`, a binary init segment, and
 * binary fMP4 fragments (from a keyframe); `{type:'error', code, message}` then close 4000 when
 * the stream fails. Plain `ws` (not socket.io): binary frames with no envelope, straight into
 * MSE's appendBuffer. Clients send nothing (anything they send is ignored, 4 KB at most).
 */
@Injectable()
export class VideoWebSocket implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger('VideoWS');
  private wss?: WebSocketServer;
  private server?: Server;
  /**
   * An 'upgrade' listener that throws kills the process (it runs inside the HTTP parser's emit):
   * attack pass 4 did it with `GET http://[ HTTP/1.1` (new URL threw). Whatever goes wrong is a 400 here.
   */
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    try {
      this.upgrade(req, socket, head);
    } catch (e) {
      malformedInput.inc({ source: 'video_ws', reason: 'bad_request' });
      this.logger.warn(`video websocket upgrade refused: ${(e as Error).message}`);
      if (!socket.destroyed) this.refuse(socket, 400, ErrorCode.VALIDATION_FAILED, 'malformed upgrade request');
    }
  };

  constructor(
    private readonly host: HttpAdapterHost,
    private readonly video: VideoService,
  ) {}

  onModuleInit(): void {
    const server = this.host.httpAdapter?.getHttpServer?.() as Server | undefined;
    if (!server) return;
    this.server = server;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false });
    server.on('upgrade', this.onUpgrade);
  }

  private refuse(socket: Duplex, status: number, code: string, message: string): void {
    const body = JSON.stringify({ error: { code, message, requestId: randomUUID() } });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== WS_PATH) return; // socket.io and others handle their own paths
    const camera = url.searchParams.get('camera') ?? '';
    const token = url.searchParams.get('token') ?? '';
    const claims = this.video.tokens.verify(token, camera);
    if (typeof claims === 'string') {
      malformedInput.inc({ source: 'video_ws', reason: claims });
      const code =
        claims === 'expired' ? ErrorCode.VIDEO.TOKEN_EXPIRED : claims === 'wrong_camera' ? ErrorCode.VIDEO.TOKEN_WRONG_CAMERA : ErrorCode.VIDEO.TOKEN_INVALID;
      return this.refuse(
        socket,
        claims === 'wrong_camera' ? 403 : 401,
        code,
        `stream token refused (${claims}); ask POST /api/v1/cameras/:id/stream for a new one`,
      );
    }
    this.wss!.handleUpgrade(req, socket, head, (ws) => void this.serve(ws, claims));
  }

  private async serve(ws: WebSocket, claims: Parameters<VideoService['attach']>[0]): Promise<void> {
    let detach: (() => void) | null = null;
    let closed = false;
    ws.on('close', () => {
      closed = true;
      detach?.();
    });
    ws.on('error', () => undefined);
    ws.on('message', () => undefined);
    try {
      const d = await this.video.attach(claims, {
        sendText: (s) => ws.readyState === WebSocket.OPEN && ws.send(s),
        sendBinary: (b) => ws.readyState === WebSocket.OPEN && ws.send(b, { binary: true }),
        bufferedAmount: () => ws.bufferedAmount,
        close: (code, reason) => ws.close(code, reason.slice(0, 120)),
      });
      if (closed) d();
      else detach = d;
    } catch (e) {
      const err = e instanceof DomainError ? e : null;
      if (!err) this.logger.warn(`video viewer failed: ${(e as Error).message}`);
      const code = err?.code ?? ErrorCode.VIDEO.UPSTREAM_FAILED;
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'error', code, message: err?.message ?? 'stream failed' }));
      ws.close(CLOSE_ERROR, code);
    }
  }

  /**
   * Before the HTTP server closes (it waits for every open socket, upgraded ones included): players
   * are told and disconnected, so a graceful shutdown never hangs on a tab left open.
   */
  beforeApplicationShutdown(): void {
    this.server?.off('upgrade', this.onUpgrade);
    for (const c of this.wss?.clients ?? []) {
      if (c.readyState === WebSocket.OPEN) c.send(JSON.stringify({ type: 'error', code: ErrorCode.VIDEO.SHUTTING_DOWN, message: 'the server is restarting' }));
      c.terminate();
    }
    this.wss?.close();
  }
}
