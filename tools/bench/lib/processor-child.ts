/**
 * A stock processor for the benchmarks, run as a child process (spawnNode) so that two of them
 * can be compared without sharing an event loop: the real CDC topic from its end, its own Redis
 * prefix, consumer group and private output topics (startTestProcessor, tests/processor-helpers.ts),
 * with or without sales-channel figures (stream-processors/channel-figures.ts, as service.ts wires
 * them). The production entry point (stream-processors/main.ts) always keeps channel figures when
 * channels exist, so it cannot be the "without" side.
 *
 * Usage: node --import tsx tools/bench/lib/processor-child.ts --prefix P --group G --probe SKU [--channels]
 * Prints `{"type":"ready"}` on stdout once a change of the probe SKU is in its view; a line
 * `metrics` on stdin is answered with `{"type":"metrics","batches","batchSeconds","events"}` (its
 * batch-apply histogram's count and sum, and the events it folded, so far); SIGTERM or stdin
 * closing stops it (its private topics and group are deleted).
 */
import readline from 'node:readline';
import { loadConfigOrExit } from '../../../lib/config.ts';
import { createKafka } from '../../../lib/kafka.ts';
import { createPgPool } from '../../../lib/pg.ts';
import { createRedis } from '../../../lib/redis.ts';
import { startTestProcessor, waitProcessorLive } from '../../../tests/processor-helpers.ts';

const argv = process.argv.slice(2);
const arg = (name: string): string => {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? argv[i + 1] : undefined;
  if (!v) {
    process.stderr.write(`error: --${name} is required\n`);
    process.exit(2);
  }
  return v;
};
const prefix = arg('prefix');
const groupId = arg('group');
const probe = arg('probe');
const withChannels = argv.includes('--channels');
// --feed-maxlen N: the feed's length (default the test helper's 10,000; bench:bulk-load passes FEED_MAXLEN).
const feedMaxLen = argv.includes('--feed-maxlen') ? Number(argv[argv.indexOf('--feed-maxlen') + 1]) : undefined;

const config = loadConfigOrExit();
const kafka = createKafka({ connection: config.kafka, clientId: `bench-${groupId}` });
const redis = createRedis(config.redis);
const pool = createPgPool(config.pg.url, { max: 3, application: `invsync-bench-${groupId}` });

// Stop requests are taken from the start: one that comes while the processor is still starting
// waits for it, so its private topics and group are deleted all the same.
const starting = startTestProcessor({
  config,
  kafka,
  redis,
  prefix,
  groupId,
  fromBeginning: false,
  ...(feedMaxLen ? { feedMaxLen } : {}),
  ...(withChannels ? { channels: { pool, pollMs: config.channels.pollMs } } : {}),
});
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  const started = await starting.catch(() => undefined);
  await started?.processor.stop().catch((err: Error) => process.stderr.write(`stop: ${err.message}\n`));
  await pool.end().catch(() => undefined);
  redis.disconnect();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
const input = readline.createInterface({ input: process.stdin });
input.on('close', () => void stop());
input.on('line', (line) => {
  if (line.trim() !== 'metrics') return;
  void starting.then(async (p) => {
    const sample = async (m: { get(): Promise<{ values: Array<{ value: number; metricName?: string }> }> }, suffix: string) =>
      (await m.get()).values.filter((v) => (v.metricName ?? '').endsWith(suffix)).reduce((a, v) => a + v.value, 0);
    const out = { type: 'metrics', batches: await sample(p.metrics.batchApply, '_count'), batchSeconds: await sample(p.metrics.batchApply, '_sum'), events: await sample(p.metrics.events, '') };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  });
});

const started = await starting;
await waitProcessorLive(pool, started.views, probe, 60_000).catch((err: unknown) => {
  if (!stopping) throw err; // stopped while waiting: the pool is gone, and that is no failure
});
if (!stopping) process.stdout.write(`${JSON.stringify({ type: 'ready' })}\n`);
