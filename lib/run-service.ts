/**
 * The shared life of a long-running entry point (`npm run processor`, `npm run connectors`):
 * start the service, report it, stop it cleanly on SIGINT/SIGTERM (exit 0 once stopped, 1 if
 * stopping failed). A configuration error found while starting prints one line and exits 2, like
 * a bad variable; any other start failure is logged and exits 1.
 */
import { ConfigError, errorMessage } from './errors.ts';
import type { Logger } from './logger.ts';

export async function runService<S extends { stop(): Promise<void> }>(opts: {
  logger: Logger;
  /** What it is, for the log lines: `stock processor`. */
  what: string;
  start: () => Promise<S>;
  /** Log fields once running (may wait, e.g. for the consumer group join). */
  describe?: (service: S) => Promise<Record<string, unknown>>;
}): Promise<void> {
  const { logger } = opts;
  try {
    const service = await opts.start();
    logger.info(opts.describe ? await opts.describe(service) : {}, `${opts.what} running`);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping');
      service.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`error: ${err.message}\n`);
      process.exit(2);
    }
    logger.fatal({ err: errorMessage(err) }, `${opts.what} failed to start`);
    process.exit(1);
  }
}
