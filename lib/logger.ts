/**
 * Structured logging (pino). One root logger per process; modules take child loggers with their
 * own fields (`component`, `topic`, `partition`, `offset`, `sku`, ...).
 */
import { destination, pino, type Logger } from 'pino';

export type { Logger };

/** `file`: append to that file (synchronously) instead of writing to stdout. */
export function createLogger(options: { level: string; name?: string; file?: string }): Logger {
  const opts = {
    level: options.level,
    base: options.name ? { name: options.name } : {},
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.file ? pino(opts, destination({ dest: options.file, append: true, sync: true, mkdir: true })) : pino(opts);
}
