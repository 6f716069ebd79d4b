import { Inject, Logger } from '@nestjs/common';
import { OnGatewayInit, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';
import type { Server, Socket } from 'socket.io';
import { TokenService } from '../auth/token.service';
import type { AuthUser } from '../auth/roles';

export const DISTRICT_ROOM = 'district';
export const schoolRoom = (schoolId: string) => `school:${schoolId}`;

/**
 * The console's socket.io endpoint (namespace /console). A client authenticates in the
 * handshake (`auth: { token }` or an Authorization: Bearer header); anything else is refused
 * before the connection opens. Control-center roles join the district room, school staff
 * their school's room only.
 */
@WebSocketGateway({ namespace: '/console', cors: { origin: true, credentials: true } })
export class ConsoleGateway implements OnGatewayInit {
  private readonly logger = new Logger('ConsoleGateway');
  @WebSocketServer() server: import('socket.io').Namespace;

  constructor(@Inject(TokenService) private readonly tokens: TokenService) {}

  afterInit(ns: unknown): void {
    (ns as Server).use(async (socket: Socket, next) => {
      const fromAuth = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
      const header = socket.handshake.headers.authorization;
      const token = typeof fromAuth === 'string' ? fromAuth : header?.startsWith('Bearer ') ? header.slice(7) : undefined;
      if (!token) return next(Object.assign(new Error('AUTH.UNAUTHENTICATED'), { data: { code: 'AUTH.UNAUTHENTICATED' } }));
      try {
        const user = await this.tokens.verifyAccess(token);
        socket.data.user = user;
        await socket.join(user.role === 'school_security' && user.schoolId ? schoolRoom(user.schoolId) : DISTRICT_ROOM);
        next();
      } catch (e) {
        const code = (e as { code?: string }).code ?? 'AUTH.TOKEN_INVALID';
        next(Object.assign(new Error(code), { data: { code } }));
      }
    });
    (ns as Server).on('connection', (socket: Socket) => {
      const user = socket.data.user as AuthUser;
      socket.emit('session', { v: 1, user: { id: user.id, username: user.username, role: user.role, schoolId: user.schoolId } });
    });
    this.logger.log('console gateway ready on /console');
  }
}
