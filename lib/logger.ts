/**
 * Structured logging (pino). One root logger per process; modules take child loggers with their
 * own fields (`component`, `topic`, `partition`, `offset`, `sku`, ...).
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(options: { level: string; name?: string }): Logger {
  return pino({
    level: options.level,
    base: options.name ? { name: options.name } : {},
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
