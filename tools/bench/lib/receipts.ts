/**
 * Latency bookkeeping of the side-by-side latency benchmarks (tools/bench/channels.ts): commit ->
 * receipt per (sku, version), the share a later version superseded, ratios and paired
 * differences between two paths measured on the same commits. Pure.
 */
import { percentile } from '../args.ts';
import { stats, type Stats } from './stats.ts';

/** What one path saw of the acknowledged updates. */
export interface PathLatency {
  stats: Stats;
  matched: number;
  /** Not received, but a later version of the SKU was (coalesced on the way). */
  superseded: number;
  /** Not received, and nothing later either. */
  missing: number;
  /** Commit -> receipt by `sku/version`. */
  values: Map<string, number>;
}

/** Commit -> receipt per `sku/version` (the first receipt counts) and the highest version received per SKU. */
export class Receipts {
  readonly at = new Map<string, number>();
  readonly highest = new Map<string, number>();

  add(sku: string, version: number, commitTs: number, receivedAt: number): void {
    const k = `${sku}/${version}`;
    if (!this.at.has(k)) this.at.set(k, receivedAt - commitTs);
    if (version > (this.highest.get(sku) ?? -1)) this.highest.set(sku, version);
  }

  /** Receipts as the SDK client reports them: [sku, version, commitTs, receivedAt]. */
  absorb(rs: Iterable<[string, number, number, number]>): void {
    for (const [sku, version, commitTs, at] of rs) this.add(sku, version, commitTs, at);
  }

  clear(): void {
    this.at.clear();
    this.highest.clear();
  }

  /** Whether `sku/version` arrived, or a later version of the SKU did. */
  settled(key: string): boolean {
    if (this.at.has(key)) return true;
    const [sku, v] = splitKey(key);
    return (this.highest.get(sku) ?? -1) > v;
  }

  /** The latencies of the acknowledged updates `acked` (keys `sku/version`). */
  of(acked: Iterable<string>): PathLatency {
    const values = new Map<string, number>();
    let superseded = 0;
    let missing = 0;
    for (const k of acked) {
      const ms = this.at.get(k);
      if (ms !== undefined) values.set(k, ms);
      else if (this.settled(k)) superseded++;
      else missing++;
    }
    return { stats: stats([...values.values()]), matched: values.size, superseded, missing, values };
  }
}

function splitKey(key: string): [string, number] {
  const at = key.lastIndexOf('/');
  return [key.slice(0, at), Number(key.slice(at + 1))];
}

/** `a / b` per percentile, 2 decimals (a denominator under 1 ms counts as 1 ms). */
export function ratio(a: Stats, b: Stats): { p50: number; p95: number; p99: number } {
  const r = (x: number, y: number) => +(x / Math.max(1, y)).toFixed(2);
  return { p50: r(a.p50, b.p50), p95: r(a.p95, b.p95), p99: r(a.p99, b.p99) };
}

/** Per-event difference `a - b` over the events both paths measured. */
export function paired(a: Map<string, number>, b: Map<string, number>): Stats & { events: number } {
  const d: number[] = [];
  for (const [k, x] of a) {
    const y = b.get(k);
    if (y !== undefined) d.push(x - y);
  }
  return { events: d.length, ...stats(d) };
}

/** The median (nearest rank) of `xs`; NaN when empty. */
export function median(xs: number[]): number {
  return percentile([...xs].sort((a, b) => a - b), 50);
}
