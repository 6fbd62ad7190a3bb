/** Latency statistics shared by the benchmark scripts. */
import { percentile } from '../args.ts';

/** p50 / p95 / p99 / max of a sample, in the sample's unit. */
export interface Stats {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Sorts `xs` in place (ascending) and returns its nearest-rank p50, p95, p99 and max. */
export function stats(xs: number[]): Stats {
  xs.sort((a, b) => a - b);
  return { p50: percentile(xs, 50), p95: percentile(xs, 95), p99: percentile(xs, 99), max: xs[xs.length - 1] ?? Number.NaN };
}

/** A latency histogram's summary as the WebSocket load client reports it (null when empty). */
export interface LatencySummary {
  count: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
  min: number | null;
}
