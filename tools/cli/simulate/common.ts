/**
 * What the simulations share (tools/cli/simulate.ts dispatches to them): option errors, how
 * shoppers authenticate, the options and pacing of the open-ended runs (wms, erp, shoppers), a
 * seeded PRNG and weighted choice.
 */
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../../../lib/config.ts';
import { mulberry32 } from '../../../lib/prng.ts';

/** A bad option: one line. */
export function bad(message: string): never {
  process.stderr.write(`error: ${message} (npm run simulate -- --help)\n`);
  process.exit(2);
}

/**
 * How simulated shoppers authenticate (docs/security.md#credentials-who-may-do-what): as a storefront backend
 * (the first configured API key with purchase:act-for; the development key dev-storefront-key
 * by default) naming each shopper in X-Customer-Id, which also lets it confirm and cancel their
 * orders. Without such a key, anonymously (development mode, PURCHASE_ALLOW_ANONYMOUS=1).
 */
export function shopperAuth(config: Config): (customerId: string) => Record<string, string> {
  const key = config.gateway.apiKeys.find((k) => k.scopes.includes('purchase:act-for'))?.key;
  return (customerId): Record<string, string> => (key ? { Authorization: `Bearer ${key}`, 'X-Customer-Id': customerId } : { 'X-Customer-Id': customerId });
}

export interface RunOptions {
  rate: number;
  seconds: number | undefined;
  count: number | undefined;
  seed: number;
  skus: number;
  locations: number;
  source: string;
  shoppers: number;
  gateway: string;
}

export type Simulation = 'wms' | 'erp' | 'shoppers';

const RUN_FLAGS: Record<Simulation, string[]> = {
  wms: ['--rate', '--seconds', '--count', '--seed', '--skus', '--locations', '--source'],
  erp: ['--rate', '--seconds', '--count', '--seed', '--skus', '--locations', '--source'],
  shoppers: ['--rate', '--seconds', '--count', '--seed', '--skus', '--shoppers', '--gateway'],
};

function loopbackGateway(value: string, flag: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    bad(`${flag} must be a URL such as http://127.0.0.1:18080 (got ${JSON.stringify(value)})`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') bad(`${flag} must be an http:// URL (got ${JSON.stringify(value)})`);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname) && !/^127\.\d+\.\d+\.\d+$/.test(u.hostname)) bad(`${flag} must be on this machine (loopback), got ${u.hostname}`);
  return u.origin;
}

export function parseRun(kind: Simulation, argv: string[], config: Config): RunOptions {
  const host = ['0.0.0.0', '::'].includes(config.gateway.host) ? '127.0.0.1' : config.gateway.host;
  const o: RunOptions = {
    rate: kind === 'wms' ? 20 : kind === 'erp' ? 1 : 5,
    seconds: undefined,
    count: undefined,
    seed: randomInt(1, 2 ** 31),
    skus: config.seed.skus,
    locations: config.seed.locations,
    source: `${kind}-sim-1`,
    shoppers: 50,
    gateway: `http://${host.includes(':') ? `[${host}]` : host}:${config.gateway.port}`,
  };
  const int = (flag: string, raw: string, min: number, max: number): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) bad(`${flag} must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
    return n;
  };
  const positive = (flag: string, raw: string, max: number, what: string): number => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0 || n > max) bad(`${flag} must be a number of ${what} above 0, at most ${max} (got ${JSON.stringify(raw)})`);
    return n;
  };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    if (!flag.startsWith('--')) bad(`unexpected argument ${JSON.stringify(flag)}`);
    if (!RUN_FLAGS[kind].includes(flag)) bad(`unknown option ${flag} for ${kind} (it takes ${RUN_FLAGS[kind].join(', ')})`);
    if (value === undefined || value.startsWith('--')) bad(`${flag} needs a value`);
    switch (flag) {
      case '--rate':
        o.rate = positive(flag, value, 100_000, kind === 'erp' ? 'documents per second' : kind === 'wms' ? 'adjustments per second' : 'actions per second');
        break;
      case '--seconds':
        o.seconds = positive(flag, value, 7 * 24 * 3600, 'seconds');
        break;
      case '--count':
        o.count = int(flag, value, 1, 100_000_000);
        break;
      case '--seed':
        o.seed = int(flag, value, 0, 2 ** 31 - 1);
        break;
      case '--skus':
        o.skus = int(flag, value, 1, 10_000_000);
        break;
      case '--locations':
        o.locations = int(flag, value, 1, 1000);
        break;
      case '--shoppers':
        o.shoppers = int(flag, value, 1, 100_000);
        break;
      case '--source':
        if (!/^[\x21-\x7e]{1,64}$/.test(value)) bad(`--source must be 1 to 64 printable characters without spaces (got ${JSON.stringify(value)})`);
        o.source = value;
        break;
      case '--gateway':
        o.gateway = loopbackGateway(value, flag);
        break;
    }
  }
  if (o.seconds !== undefined && o.count !== undefined) bad('give --seconds or --count, not both');
  return o;
}

/** A seeded PRNG (lib/prng.ts), so `--seed` replays the same mix. */
export const prng = mulberry32;

/** Picks a key of `weights` with probability proportional to its weight. */
export function weighted<K extends string>(rng: () => number, weights: Record<K, number>): K {
  const entries = Object.entries(weights) as Array<[K, number]>;
  let r = rng() * entries.reduce((s, [, w]) => s + w, 0);
  for (const [k, w] of entries) {
    r -= w;
    if (r < 0) return k;
  }
  return entries[entries.length - 1]![0];
}

/**
 * Calls `step(n)` with the units due at `rate`/s (checked every few ms; a slow step makes the next
 * one bigger) until `--seconds` / `--count` or Ctrl-C, and shows one progress line.
 */
export async function paced(
  o: RunOptions,
  label: string,
  unit: string,
  step: (due: number) => Promise<void>,
  progress: () => string,
): Promise<{ seconds: number; interrupted: boolean }> {
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  let done = 0;
  let interrupted = false;
  const stop = new AbortController();
  const onSigint = () => {
    interrupted = true;
    stop.abort();
  };
  process.once('SIGINT', onSigint);
  const tty = process.stderr.isTTY;
  const line = () => `${label}: ${progress()}   ${(done / Math.max(elapsed(), 0.001)).toFixed(1)} ${unit}/s   ${elapsed().toFixed(1)} s${o.seconds ? ` of ${o.seconds}` : o.count ? `   ${done}/${o.count}` : '   Ctrl-C to stop'}`;
  const show = () => process.stderr.write(tty ? `\r${line()}\x1b[K` : `${line()}\n`);
  const printer = setInterval(show, tty ? 250 : 2000);
  try {
    // Bounded runs do exactly their share: rate x seconds, or count.
    const total = o.seconds !== undefined ? Math.floor(o.seconds * o.rate) : o.count;
    while (!stop.signal.aborted) {
      const t = elapsed();
      const over = o.seconds !== undefined && t >= o.seconds;
      const target = total === undefined ? Math.floor(t * o.rate) : over ? total : Math.min(total, Math.floor(t * o.rate));
      const due = target - done;
      if (due > 0) {
        await step(due);
        done += due;
      } else if (total !== undefined && done >= total) break;
      else await sleep(Math.min(50, Math.max(1, ((done + 1) / o.rate - t) * 1000)), undefined, { signal: stop.signal }).catch(() => undefined);
    }
  } finally {
    clearInterval(printer);
    process.removeListener('SIGINT', onSigint);
    show();
    if (tty) process.stderr.write('\n');
  }
  return { seconds: elapsed(), interrupted };
}
