/**
 * One retry helper for the whole code base: jittered exponential backoff ("full jitter"), and it
 * retries only what `isRetriable` says is retriable, so a malformed input fails at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isRetriable } from './errors.ts';

export interface RetryOptions {
  retries?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  factor?: number;
  /** Overrides the default retriable test. */
  retriable?: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  random?: () => number;
}

/** Delay before retry `attempt` (1-based): uniform in [0, min(max, initial * factor^(attempt-1))]. */
export function backoffDelay(
  attempt: number,
  { initialDelayMs = 100, maxDelayMs = 10_000, factor = 2, random = Math.random }: RetryOptions = {},
): number {
  const ceiling = Math.min(maxDelayMs, initialDelayMs * factor ** Math.max(0, attempt - 1));
  return Math.round(random() * ceiling);
}

export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const { retries = 5, retriable = isRetriable } = options;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= retries || !retriable(err)) throw err;
      const delay = backoffDelay(attempt + 1, options);
      options.onRetry?.(err, attempt + 1, delay);
      await sleep(delay);
    }
  }
}

/** Polls `probe` until it returns true or the deadline passes; returns whether it succeeded. */
export async function waitFor(
  probe: () => Promise<boolean>,
  { timeoutMs, intervalMs = 250 }: { timeoutMs: number; intervalMs?: number },
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return true;
    } catch {
      // a probe that throws counts as "not yet"
    }
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}
