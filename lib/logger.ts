/**
 * Structured logging (pino). One root logger per process; modules take child loggers with their
 * own fields (`component`, `topic`, `partition`, `offset`, `sku`, ...).
 *
 * Output: JSON lines (for files, pipes and log collectors — the supervisor parses its children's
 * lines), or, when stdout is a terminal, one concise readable line per entry (pino-pretty).
 */
import { destination, pino, type Logger } from 'pino';
import pinoPretty from 'pino-pretty';

export type { Logger };

/**
 * `file`: append to that file (synchronously) instead of writing to stdout. `pretty`: readable
 * lines instead of JSON; by default when stdout is a terminal (never for a file).
 */
export function createLogger(options: { level: string; name?: string; file?: string; pretty?: boolean }): Logger {
  const opts = {
    level: options.level,
    base: options.name ? { name: options.name } : {},
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.file) return pino(opts, destination({ dest: options.file, append: true, sync: true, mkdir: true }));
  if (options.pretty ?? process.stdout.isTTY === true) {
    return pino(
      opts,
      pinoPretty({
        colorize: pinoPretty.isColorSupported,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
        singleLine: true,
        sync: true,
      }),
    );
  }
  return pino(opts);
}
