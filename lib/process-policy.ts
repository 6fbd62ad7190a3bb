/**
 * The process policy for unexpected errors, and the small protocol between a platform process
 * and the supervisor that runs it (lib/supervisor.ts, `npm start`).
 *
 * Policy (docs/operations.md, "Unexpected errors"): an `uncaughtException` or an
 * `unhandledRejection` is a bug whose blast radius is unknown: a half-applied batch, a socket
 * in an odd state, a timer that will never fire again. The process logs ONE fatal structured
 * line (`event: "crash"`, the kind, the message and the stack) and exits with code 70
 * (EX_SOFTWARE) at once, without trying to drain. That is safe because a platform process keeps
 * no state of its own that matters: Postgres is the truth, Redis views and gate state are
 * rebuilt or reconciled, Kafka offsets are committed only after a batch is applied, an
 * uncommitted write-back rolls back and its hold is settled by the reaper. The supervisor (or
 * systemd, Kubernetes) starts a clean process after a backoff. Limping on would serve from state
 * nobody can reason about; crashing turns an unknown state into a known one.
 *
 * Errors a client can cause are never "unexpected": they are answered (4xx, a close code, a DLQ
 * record) inside their handler and never reach this policy.
 */
import type { Logger } from './logger.ts';

/** Exit codes of the platform's processes (the supervisor reads them). */
export const EXIT = {
  /** Stopped on request, drained. */
  ok: 0,
  /** Failed to start (not a configuration error), or stopping failed or overran its bound. */
  failed: 1,
  /** Configuration error: starting again will not help. The supervisor does not restart it. */
  config: 2,
  /** Crashed on an unexpected error (this policy). */
  crash: 70,
} as const;

let installed = false;

/**
 * Installs the policy. `exit` is replaceable for tests; it runs after the fatal line is written
 * (pino writes synchronously to stdout, so the line is not lost).
 */
export function installProcessPolicy(deps: { logger: Logger; what: string; exit?: (code: number) => void }): void {
  if (installed) return;
  installed = true;
  const exit = deps.exit ?? ((code: number) => process.exit(code));
  const crash = (kind: 'uncaughtException' | 'unhandledRejection', err: unknown) => {
    const e = err instanceof Error ? err : new Error(String(err));
    try {
      deps.logger.fatal({ event: 'crash', kind, err: e.message, stack: e.stack, what: deps.what }, `${deps.what}: unexpected error (${kind}); exiting for a clean restart`);
    } finally {
      exit(EXIT.crash);
    }
  };
  process.on('uncaughtException', (err) => crash('uncaughtException', err));
  process.on('unhandledRejection', (reason) => crash('unhandledRejection', reason));
}

/** True when a supervisor started this process with an IPC channel. */
export function isSupervised(): boolean {
  return typeof process.send === 'function' && process.connected;
}

/** Tells the supervisor the process is serving; `info` is shown in its start table. */
export function notifyReady(info: Record<string, unknown> = {}): void {
  if (isSupervised()) process.send!({ type: 'ready', info }, undefined, undefined, () => undefined);
}

/**
 * Calls `stop` on SIGINT, SIGTERM, and when the supervisor's IPC channel closes (the supervisor
 * died: the child must not live on as an orphan). `stop` runs once.
 */
export function onStopRequest(stop: (reason: string) => void): void {
  let called = false;
  const once = (reason: string) => {
    if (called) return;
    called = true;
    stop(reason);
  };
  process.on('SIGINT', () => once('SIGINT'));
  process.on('SIGTERM', () => once('SIGTERM'));
  if (isSupervised()) process.on('disconnect', () => once('supervisor gone'));
}

/**
 * Runs `stop()` with a hard bound: exit 0 once it resolves, 1 when it rejects or takes longer
 * than `boundMs` (a drain that hangs must not keep the process alive forever).
 */
export function stopWithin(deps: { logger: Logger; stop: () => Promise<void>; boundMs: number; exit?: (code: number) => void }): void {
  const exit = deps.exit ?? ((code: number) => process.exit(code));
  const timer = setTimeout(() => {
    deps.logger.error({ boundMs: deps.boundMs }, 'stopping took longer than its bound; exiting anyway');
    exit(EXIT.failed);
  }, deps.boundMs);
  timer.unref();
  deps.stop().then(
    () => {
      clearTimeout(timer);
      deps.logger.info('stopped');
      exit(EXIT.ok);
    },
    (err: unknown) => {
      clearTimeout(timer);
      deps.logger.error({ err: (err as Error)?.message }, 'stopping failed');
      exit(EXIT.failed);
    },
  );
}
