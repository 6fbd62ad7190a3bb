/**
 * Warming the CDC path before the platform reports ready (issue 16, part 1).
 *
 * Measured (docs/benchmarks.md "Cold start"): right after Kafka Connect starts, Debezium's leg
 * (Postgres commit -> change event on Kafka) took seconds per event for the first few thousand
 * events, then settled at tens of milliseconds. Waiting does not help (30 s idle after a start
 * left it as slow): the JVMs warm up by doing the work. So `up` does the work itself: it sends
 * bursts of changes through the connector's own plumbing table (`cdc_heartbeat`, already in the
 * publication; its topic has no reader) and times single probe changes (commit -> the topic's end
 * offset moves) until they are fast, before it reports the stack healthy. Nothing a consumer of
 * stock sees is touched: the updates rewrite the heartbeat row with its own values.
 */
import type { Config } from '../../lib/config.ts';
import { createKafka } from '../../lib/kafka.ts';
import { createPgPool } from '../../lib/pg.ts';

/** The plumbing row the warm-up rewrites (the stock connector's heartbeat row, migration 0011). */
const HEARTBEAT_TOPIC = 'cdc.public.cdc_heartbeat';
const SLOT = 'invsync_stock_cdc';
const REWRITE = `UPDATE cdc_heartbeat SET beats = beats WHERE slot = '${SLOT}'`;

export interface WarmOptions {
  /** A probe is fast when commit -> topic takes at most this (default 100 ms). */
  thresholdMs?: number;
  /** Probes per round; the path is warm when every probe of a round is fast (default 8). */
  probes?: number;
  /** Changes per burst between rounds (default 20,000, in transactions of 2,000). */
  burst?: number;
  /** Give up (not an error: the platform still works, only slower at first) after this long (default 90 s). */
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
  const maxMs = opts.maxMs ?? 90_000;
  const t0 = Date.now();
  const deadline = t0 + maxMs;
  const pool = createPgPool(config.pg.url, { max: 1, application: 'invsync-stack-warmup' });
  const admin = createKafka({ connection: config.kafka, clientId: 'invsync-stack-warmup' }).admin();
  let events = 0;
  let rounds = 0;
  let lastProbesMs: number[] = [];
  /** The topic's end offset, summed over its partitions (-1 while it does not exist yet). */
  const end = async (): Promise<number> =>
    admin.fetchTopicOffsets(HEARTBEAT_TOPIC).then(
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
        await pool.query(REWRITE);
        events++;
        // A topic that does not exist yet (no heartbeat so far) is created by this first change.
        if (!(await until(before < 0 ? 1 : before + 1))) break;
        lastProbesMs.push(Math.round(performance.now() - t));
      }
      const max = lastProbesMs.length === probes ? Math.max(...lastProbesMs) : Number.POSITIVE_INFINITY;
      if (max <= thresholdMs) {
        log(`  connect   CDC path warm: ${probes} probes commit -> topic in ${Math.min(...lastProbesMs)}-${max} ms (${events} warm-up changes, ${((Date.now() - t0) / 1000).toFixed(1)}s)`);
        return { warm: true, events, rounds, lastProbesMs, seconds: (Date.now() - t0) / 1000 };
      }
      log(`  connect   warming the CDC path: probes ${lastProbesMs.length ? `${Math.min(...lastProbesMs)}-${Math.max(...lastProbesMs)} ms` : 'timed out'}; sending ${burst} changes`);
      const before = await end();
      for (let sent = 0; sent < burst; sent += 2000) {
        await pool.query(`DO $$ BEGIN FOR i IN 1..2000 LOOP ${REWRITE}; END LOOP; END $$`);
        events += 2000;
      }
      await until(before + burst);
    }
    log(`  connect   CDC path still slow after ${(maxMs / 1000).toFixed(0)}s of warm-up (last probes ${lastProbesMs.join(', ') || 'none'} ms); continuing`);
    return { warm: false, events, rounds, lastProbesMs, seconds: (Date.now() - t0) / 1000 };
  } finally {
    await admin.disconnect().catch(() => undefined);
    await pool.end().catch(() => undefined);
  }
}
