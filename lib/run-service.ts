/**
 * The shared life of a long-running entry point (`npm run processor`, `npm run connectors`,
 * `npm run gateway`): install the process policy for unexpected errors (lib/process-policy.ts),
 * start the service, report it (a log line, and a `ready` message to the supervisor when run by
 * `npm start`), and drain it on SIGINT/SIGTERM or when the supervisor goes away: exit 0 once
 * stopped, 1 if stopping failed or overran `stopBoundMs`. A configuration error found while
 * starting prints one line and exits 2, like a bad variable (the supervisor does not restart it);
 * any other start failure is logged and exits 1.
 */
import { ConfigError, errorMessage } from './errors.ts';
import type { Logger } from './logger.ts';
import { EXIT, installProcessPolicy, notifyReady, onStopRequest, stopWithin } from './process-policy.ts';

export async function runService<S extends { stop(): Promise<void> }>(opts: {
  logger: Logger;
  /** What it is, for the log lines: `stock processor`. */
  what: string;
  start: () => Promise<S>;
  /** Log fields once running (may wait, e.g. for the consumer group join); also sent to the supervisor. */
  describe?: (service: S) => Promise<Record<string, unknown>>;
  /** Hard bound on stopping (the drain timeout plus a margin). */
  stopBoundMs: number;
  /** A clearer one-line explanation of a start failure, when there is one (e.g. a port in use). */
  explain?: (err: unknown) => string | undefined;
}): Promise<void> {
  const { logger } = opts;
  installProcessPolicy({ logger, what: opts.what });
  let stopRequested: string | undefined;
  let service: S | undefined;
  const stop = (reason: string) => {
    stopRequested = reason;
    if (!service) {
      // Still starting: stopped as soon as the start finishes, and never later than the bound.
      setTimeout(() => process.exit(EXIT.failed), opts.stopBoundMs).unref();
      return;
    }
    logger.info({ signal: reason }, 'stopping');
    stopWithin({ logger, stop: () => service!.stop(), boundMs: opts.stopBoundMs });
  };
  onStopRequest(stop);
  try {
    service = await opts.start();
    if (stopRequested !== undefined) return stop(stopRequested);
    const fields = opts.describe ? await opts.describe(service) : {};
    logger.info(fields, `${opts.what} running`);
    notifyReady(fields);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`error: ${err.message}\n`);
      process.exit(EXIT.config);
    }
    logger.fatal({ err: errorMessage(err) }, opts.explain?.(err) ?? `${opts.what} failed to start`);
    process.exit(EXIT.failed);
  }
}
