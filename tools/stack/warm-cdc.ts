/**
 * Warming the CDC path before the platform reports ready (issue 16, part 1).
 *
 * Measured (docs/benchmarks.md "Cold start"): right after Kafka Connect starts, Debezium's leg
 * (Postgres commit -> change event on Kafka) took seconds per change for the first few thousand
 * changes, then settled at tens of milliseconds. Waiting does not help (30 s idle after a start
 * left it as slow): the JVMs warm up by doing the work. A warm-up through the narrow
 * `cdc_heartbeat` row left the first stock rows about 1 s slow in one of two runs, so the work is
 * done on rows shaped like stock rows. So
 * `up` does the work itself: it rewrites the rows of `cdc_warmup` (migration 0023: the columns and
 * replica identity of stock_levels, no triggers, in the stock connector's publication, its own
 * topic which no consumer reads) in bursts, and times single-row probes (commit -> the topic's
 * end offset moves) until a whole round is fast, before it reports the stack healthy. Nothing a
 * consumer of stock sees is touched.
 */
import type { Config } from '../../lib/config.ts';
import { createKafka } from '../../lib/kafka.ts';
import { createPgPool } from '../../lib/pg.ts';

const WARMUP_TOPIC = 'cdc.public.cdc_warmup';
/** Every row of the table, rewritten with its own values: one transaction, one change per row. */
const REWRITE_ALL = 'UPDATE cdc_warmup SET on_hand = on_hand';
/** One row, its own transaction, as most stock writes are. */
const rewriteOne = (i: number) => `UPDATE cdc_warmup SET on_hand = on_hand WHERE sku = 'WARMUP-${String((i % 2000) + 1).padStart(4, '0')}'`;

export interface WarmOptions {
  /** A probe is fast when commit -> topic takes at most this (default 100 ms). */
  thresholdMs?: number;
  /** Probes per round; the path is warm when every probe of a round is fast (default 8). */
  probes?: number;
  /** Changes per burst between rounds (default 20,000: transactions of 2,000 rows, then 500 single-row ones). */
  burst?: number;
  /** Give up (not an error: the platform still works, only slower at first) after this long (default 60 s). */
  maxMs?: number;
}

export interface WarmResult {
  warm: boolean;
  /** Changes sent through the connector, probes included. */
  events: number;
  rounds: number;
  /** The last round's probe latencies, ms. */
  lastProbesMs: number[];
  seconds: number;
}

/**
 * Sends warm-up bursts and probes through the stock connector until a whole round of probes is
 * fast (or `maxMs` passes). `log` gets one line per round.
 */
export async function warmCdcPath(config: Readonly<Config>, log: (line: string) => void, opts: WarmOptions = {}): Promise<WarmResult> {
  const thresholdMs = opts.thresholdMs ?? 100;
  const probes = opts.probes ?? 8;
  const burst = opts.burst ?? 20_000;
  const maxMs = opts.maxMs ?? 60_000;
  const t0 = Date.now();
  const deadline = t0 + maxMs;
  const pool = createPgPool(config.pg.url, { max: 1, application: 'invsync-stack-warmup' });
  const admin = createKafka({ connection: config.kafka, clientId: 'invsync-stack-warmup' }).admin();
  let events = 0;
  let rounds = 0;
  let lastProbesMs: number[] = [];
  /** The topic's end offset, summed over its partitions (-1 while it does not exist yet). */
  const end = async (): Promise<number> =>
    admin.fetchTopicOffsets(WARMUP_TOPIC).then(
      (ps) => ps.reduce((n, p) => n + Number(p.high), 0),
      () => -1,
    );
  /** Polls until the end offset reaches `target`; false when the deadline (or 10 s) passes first. */
  const until = async (target: number): Promise<boolean> => {
    const by = Math.min(deadline, Date.now() + 10_000);
    while (Date.now() < by) {
      if ((await end()) >= target) return true;
      await new Promise((r) => setTimeout(r, 2));
    }
    return false;
  };
  try {
    await admin.connect();
    while (Date.now() < deadline) {
      rounds++;
      lastProbesMs = [];
      for (let i = 0; i < probes && Date.now() < deadline; i++) {
        const before = await end();
        const t = performance.now();
        await pool.query(rewriteOne(events));
        events++;
        // A topic that does not exist yet is created by this first change.
        if (!(await until(before < 0 ? 1 : before + 1))) {
          if ((await end()) < 0) {
            log(`  connect   CDC warm-up skipped: nothing reached ${WARMUP_TOPIC} (is public.cdc_warmup in the connector's table.include.list?)`);
            return { warm: false, events, rounds, lastProbesMs, seconds: (Date.now() - t0) / 1000 };
          }
          break;
        }
        lastProbesMs.push(Math.round(performance.now() - t));
      }
      const max = lastProbesMs.length === probes ? Math.max(...lastProbesMs) : Number.POSITIVE_INFINITY;
      if (max <= thresholdMs) {
        log(`  connect   CDC path warm: ${probes} probes commit -> topic in ${Math.min(...lastProbesMs)}-${max} ms (${events} warm-up changes, ${((Date.now() - t0) / 1000).toFixed(1)}s)`);
        return { warm: true, events, rounds, lastProbesMs, seconds: (Date.now() - t0) / 1000 };
      }
      log(`  connect   warming the CDC path: probes ${lastProbesMs.length ? `${Math.min(...lastProbesMs)}-${Math.max(...lastProbesMs)} ms` : 'timed out'}; sending ${burst} changes`);
      const before = await end();
      let sent = 0;
      for (; sent < burst - 500; sent += 2000) await pool.query(REWRITE_ALL);
      for (let i = 0; i < 500; i++, sent++) await pool.query(rewriteOne(i));
      events += sent;
      await until(before + sent);
    }
    log(`  connect   CDC path still slow after ${(maxMs / 1000).toFixed(0)}s of warm-up (last probes ${lastProbesMs.join(', ') || 'none'} ms); continuing`);
    return { warm: false, events, rounds, lastProbesMs, seconds: (Date.now() - t0) / 1000 };
  } finally {
    await admin.disconnect().catch(() => undefined);
    await pool.end().catch(() => undefined);
  }
}
