import type { ConsoleConfig } from '../../config/sections';
import { DomainError, ErrorCode, Errors } from '../../infra/http/errors';
import { RateLimiter } from '../../infra/http/rate-limit';

/**
 * How much one console, and one user, may ask of this process (issue 12 §9): socket actions and
 * resumes per socket and per user (token buckets), and open consoles per access token and per
 * user. A refusal is a 429-shaped answer with `details.retryAfterSeconds`; nothing is queued.
 */
export class ConsoleLimits {
  private readonly perSocket: RateLimiter;
  private readonly perUser: RateLimiter;
  private readonly byToken = new Map<string, number>();
  private readonly byUser = new Map<string, number>();

  constructor(private readonly cfg: ConsoleConfig) {
    this.perSocket = new RateLimiter(cfg.actionsPerSecond, cfg.actionBurst);
    this.perUser = new RateLimiter(cfg.userActionsPerSecond, cfg.userActionBurst);
  }

  /** One action (or resume) of `socketId` by `userId`: null, or the refusal to answer with. */
  take(socketId: string, userId: string): DomainError | null {
    const wait = Math.max(this.perSocket.take(`s:${socketId}`), this.perUser.take(`u:${userId}`));
    if (wait === 0) return null;
    return Errors.tooMany(ErrorCode.CONSOLE.TOO_MANY_ACTIONS, '操作过于频繁，请稍后再试', Math.max(1, Math.ceil(wait / 1000)));
  }

  /** A console opening with this token (jti) for this user: null and counted, or the refusal. Pair with release(). */
  admit(jti: string, userId: string): DomainError | null {
    if ((this.byToken.get(jti) ?? 0) >= this.cfg.maxSocketsPerToken || (this.byUser.get(userId) ?? 0) >= this.cfg.maxSocketsPerUser)
      return Errors.tooMany(ErrorCode.CONSOLE.TOO_MANY_SOCKETS, '打开的控制台过多：请先关闭其他窗口', 5);
    this.byToken.set(jti, (this.byToken.get(jti) ?? 0) + 1);
    this.byUser.set(userId, (this.byUser.get(userId) ?? 0) + 1);
    return null;
  }

  release(jti: string, userId: string): void {
    for (const [map, key] of [
      [this.byToken, jti],
      [this.byUser, userId],
    ] as const) {
      const n = (map.get(key) ?? 1) - 1;
      if (n <= 0) map.delete(key);
      else map.set(key, n);
    }
  }
}
