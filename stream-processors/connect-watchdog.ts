/**
 * Restarts Debezium connectors whose connector or task FAILED. Kafka Connect never restarts a
 * failed task by itself, and Debezium fails its task when Postgres is unreachable at the wrong
 * moment (found by the chaos harness: after `pg_ctl stop -m immediate` the CDC task failed with
 * "Couldn't obtain encoding for database" and CDC stayed stopped until someone restarted it).
 * The processor runs this watchdog because it is the one that starves without CDC; several
 * processors restarting the same connector is harmless (`onlyFailed=true`).
 */
import { errorMessage } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { connectorStatuses, isRunning, loadConnectorSpecs, type ConnectorStatus } from '../tools/stack/connectors.ts';

/** A connector to restart: ours, and its connector or a task FAILED (a paused or starting one is left alone). */
export function needsRestart(s: ConnectorStatus, names: readonly string[]): boolean {
  if (!names.includes(s.name) || isRunning(s)) return false;
  return s.state === 'FAILED' || s.tasks.some((t) => t.state === 'FAILED');
}

/** One pass: restarts the failed ones among `names`; returns the names it restarted. */
export async function restartFailedConnectors(connectUrl: string, names: string[]): Promise<string[]> {
  const restarted: string[] = [];
  for (const s of await connectorStatuses(connectUrl)) {
    if (!needsRestart(s, names)) continue;
    const res = await fetch(`${connectUrl}/connectors/${encodeURIComponent(s.name)}/restart?includeTasks=true&onlyFailed=true`, {
      method: 'POST',
      signal: AbortSignal.timeout(5000),
    });
    if (res.status < 300) restarted.push(s.name);
  }
  return restarted;
}

/** Runs a pass every `intervalMs`; returns the stop function. Connect being down is not an error here. */
export function watchConnectors(opts: { connectUrl: string; intervalMs: number; log: Logger; names?: string[] }): () => Promise<void> {
  let names = opts.names ?? [];
  if (!opts.names) {
    try {
      names = loadConnectorSpecs().map((s) => s.name);
    } catch (err) {
      opts.log.warn({ err: errorMessage(err) }, 'connector watchdog: no connector specs found; watching nothing');
    }
  }
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const tick = () => {
    running = restartFailedConnectors(opts.connectUrl, names)
      .then((r) => {
        if (r.length) opts.log.warn({ connectors: r }, 'restarted failed Kafka Connect connector(s)');
      })
      .catch((err: unknown) => opts.log.debug({ err: errorMessage(err) }, 'connector watchdog: Kafka Connect not reachable'))
      .finally(() => {
        running = undefined;
        if (!stopped) timer = setTimeout(tick, opts.intervalMs);
      });
  };
  timer = setTimeout(tick, opts.intervalMs);
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await running;
  };
}
