import { LoggerService } from '@nestjs/common';
import { currentContext } from '../http/request-context';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type LogLevel = keyof typeof LEVELS;

/**
 * Nest's own start-up narration (one line per module, controller, route and socket message: ~200
 * lines) is written at debug, not info, so that info holds what an operator needs — migrations
 * applied, the "ready" line, warnings. LOG_LEVEL=debug shows it again.
 */
const FRAMEWORK_CHATTER = new Set(['InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'WebSocketsController', 'NestFactory', 'NestApplication']);

/**
 * Structured JSON lines on stdout, one object per line, with the request id of the request
 * being served (AsyncLocalStorage). Hot paths must not log per message at info level.
 */
export class JsonLogger implements LoggerService {
  constructor(
    private level: LogLevel = 'info',
    private readonly out: (line: string) => void = (l) => process.stdout.write(l + '\n'),
  ) {}

  setLevel(level: LogLevel): void {
    this.level = level;
  }

  private write(level: Exclude<LogLevel, 'silent'>, message: unknown, rest: unknown[]): void {
    // Nest passes the context as the last string argument.
    const context = typeof rest[rest.length - 1] === 'string' ? (rest[rest.length - 1] as string) : undefined;
    if (level === 'info' && context && FRAMEWORK_CHATTER.has(context)) level = 'debug';
    if (LEVELS[level] < LEVELS[this.level]) return;
    if (context !== undefined) rest.pop();
    const entry: Record<string, unknown> = { time: new Date().toISOString(), level };
    if (context) entry.context = context;
    const ctx = currentContext();
    if (ctx) entry.requestId = ctx.requestId;
    if (message instanceof Error) {
      entry.msg = message.message;
      entry.stack = message.stack;
    } else if (typeof message === 'object' && message !== null) {
      Object.assign(entry, message);
    } else {
      entry.msg = String(message);
    }
    for (const r of rest) {
      if (typeof r === 'string' && r.includes('\n    at ')) entry.stack = r;
      else if (r !== undefined) entry.detail = r;
    }
    this.out(JSON.stringify(entry));
  }

  log(message: unknown, ...rest: unknown[]): void {
    this.write('info', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.write('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.write('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.write('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.write('debug', message, rest);
  }
}
