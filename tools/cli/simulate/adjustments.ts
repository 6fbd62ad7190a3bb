/**
 * What wms and erp share: a local model of on-hand stock (read from Postgres at start when
 * reachable, else from the demo seed's formula) so that picks never exceed what is there, the
 * adjustment record, and the producer loop that sends the generated adjustments as Avro
 * `StockAdjustment`s on `stock.adjustments` (key = sku). Applying them is the inbound connector's job.
 */
import { randomInt } from 'node:crypto';
import { registerStockSchemas, type StockCodecs } from '../../../lib/avro-registry.ts';
import type { Config } from '../../../lib/config.ts';
import { errorMessage } from '../../../lib/errors.ts';
import { createKafka } from '../../../lib/kafka.ts';
import { createPgPool } from '../../../lib/pg.ts';
import { redactUrl } from '../../../lib/redact.ts';
import { locationId, skuId } from '../../../lib/seed.ts';
import { TOPICS } from '../../../lib/topics.ts';
import type { AdjustmentKind, StockAdjustment } from '../../../schemas/generated/avro-types.ts';
import { paced, prng, type RunOptions } from './common.ts';

/** A local picture of on-hand stock, so picks never exceed what is there and counts look real. */
class StockModel {
  private readonly onHand = new Map<string, number>();
  private readonly reserved = new Map<string, number>();
  source = 'the seed formula';

  constructor(readonly skus: number, readonly locations: number) {}

  private key(s: number, l: number): string {
    return `${s}|${l}`;
  }

  /** The demo seed's quantities (lib/seed.ts), for when Postgres is not reachable. */
  private seeded(s: number, l: number): number {
    return ((s * 7 + l * 13) % 50) + 5;
  }

  async load(config: Config): Promise<void> {
    if (this.skus * this.locations > 300_000) return;
    const pool = createPgPool(config.pg.url, { max: 1, application: 'invsync-simulate' });
    try {
      const skus = Array.from({ length: this.skus }, (_, i) => skuId(i + 1));
      const locs = Array.from({ length: this.locations }, (_, i) => locationId(i + 1));
      const { rows } = await pool.query<{ sku: string; location_id: string; on_hand: number; reserved: number }>(
        'SELECT sku, location_id, on_hand, reserved FROM stock_levels WHERE sku = ANY($1::text[]) AND location_id = ANY($2::text[])',
        [skus, locs],
      );
      for (const r of rows) {
        const s = Number(r.sku.slice(4));
        const l = Number(r.location_id.slice(3));
        this.onHand.set(this.key(s, l), r.on_hand);
        this.reserved.set(this.key(s, l), r.reserved);
      }
      this.source = `Postgres (${rows.length} rows)`;
    } catch {
      // Not reachable: the seed formula stands in.
    } finally {
      await pool.end().catch(() => undefined);
    }
  }

  get(s: number, l: number): { onHand: number; reserved: number; sellable: number } {
    const onHand = this.onHand.get(this.key(s, l)) ?? this.seeded(s, l);
    const reserved = this.reserved.get(this.key(s, l)) ?? 0;
    return { onHand, reserved, sellable: Math.max(0, onHand - reserved) };
  }

  add(s: number, l: number, delta: number): void {
    this.onHand.set(this.key(s, l), Math.max(0, this.get(s, l).onHand + delta));
  }

  set(s: number, l: number, value: number): void {
    this.onHand.set(this.key(s, l), value);
  }
}

export interface AdjustmentRun {
  model: StockModel;
  rng: () => number;
  runId: string;
  seq: number;
  docs: number;
  kinds: Map<string, number>;
  touched: Set<string>;
}

export function newAdjustment(o: RunOptions, run: AdjustmentRun, s: number, l: number, kind: AdjustmentKind, quantity: number, reference: string, toLocation?: number): StockAdjustment {
  run.seq++;
  run.kinds.set(kind, (run.kinds.get(kind) ?? 0) + 1);
  run.touched.add(skuId(s));
  return {
    adjustmentId: `${o.source}-${run.runId}-${String(run.seq).padStart(6, '0')}`,
    sku: skuId(s),
    locationId: locationId(l),
    kind,
    quantity,
    toLocationId: toLocation === undefined ? null : locationId(toLocation),
    occurredAt: Date.now(),
    sourceSystem: o.source,
    reference,
    expectedOnHand: null,
    expectedVersion: null,
    countedAt: null,
  };
}

/** Popular SKUs move more: the square of a uniform draw favours low numbers. */
export function pickSku(run: AdjustmentRun, skus: number): number {
  return Math.min(skus, 1 + Math.floor(skus * run.rng() ** 2));
}

export function pickLocation(run: AdjustmentRun, locations: number): number {
  return 1 + Math.floor(run.rng() * locations);
}

/**
 * Produces what `generate(due, run)` returns for the units due at `o.rate`/s until the run ends,
 * with a progress line and a summary. Exit code as for the simulate command.
 */
export async function produceAdjustments(
  kind: 'wms' | 'erp',
  o: RunOptions,
  config: Config,
  generate: (due: number, run: AdjustmentRun) => StockAdjustment[],
): Promise<number> {
  const err = (m: string) => process.stderr.write(`error: ${m}\n`);
  const kafka = createKafka({ connection: config.kafka, clientId: `invsync-simulate-${kind}`, overrides: { connectionTimeout: 3000, retry: { initialRetryTime: 200, retries: 3 } } });
  let codecs: StockCodecs;
  try {
    codecs = await registerStockSchemas(config.registry);
  } catch (e) {
    err(`the schema registry at ${redactUrl(config.registry.url)} is not usable (${errorMessage(e)}): is the stack up? npm run stack -- status`);
    return 1;
  }
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  try {
    await producer.connect();
  } catch (e) {
    err(`Kafka is not reachable at ${config.kafka.brokers.join(',')} (${errorMessage(e)}): is the stack up? npm run stack -- status`);
    return 1;
  }
  const model = new StockModel(o.skus, o.locations);
  await model.load(config);
  const run: AdjustmentRun = { model, rng: prng(o.seed), runId: `${Date.now().toString(36)}${randomInt(36 ** 2).toString(36)}`, seq: 0, docs: 0, kinds: new Map(), touched: new Set() };
  process.stderr.write(
    `${kind}: ${o.source} sends to ${TOPICS.stockAdjustments} at ${o.rate} ${kind === 'erp' ? 'documents' : 'adjustments'}/s over ${o.skus} SKUs x ${o.locations} locations (stock model: ${model.source}; --seed ${o.seed})\n`,
  );
  const firstId = `${o.source}-${run.runId}-000001`;
  let failed: unknown;
  const kindsText = () => [...run.kinds].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ') || 'nothing yet';
  const { seconds, interrupted } = await paced(
    o,
    kind,
    kind === 'erp' ? 'documents' : 'adjustments',
    async (due) => {
      if (failed) return;
      const list = generate(due, run);
      try {
        const messages = await Promise.all(list.map(async (a) => ({ key: a.sku, value: await codecs.stockAdjustment.encode(a) })));
        await producer.send({ topic: TOPICS.stockAdjustments, acks: -1, messages });
      } catch (e) {
        failed = e;
      }
    },
    () => `${run.seq} adjustments${kind === 'erp' ? ` in ${run.docs} documents` : ''} (${kindsText()})`,
  );
  await producer.disconnect().catch(() => undefined);
  const sent = failed ? 'some' : String(run.seq);
  process.stdout.write(
    [
      `${kind}: ${interrupted ? 'interrupted after' : 'done in'} ${seconds.toFixed(1)} s: ${sent} adjustments${kind === 'erp' ? ` in ${run.docs} documents` : ''} sent to ${TOPICS.stockAdjustments} by ${o.source} (${(run.seq / Math.max(seconds, 0.001)).toFixed(1)}/s): ${kindsText()}`,
      `${run.touched.size} SKUs touched; adjustment ids ${firstId} ... ${o.source}-${run.runId}-${String(run.seq).padStart(6, '0')}`,
      `look at them: npm run inspect -- ${TOPICS.stockAdjustments} --limit 3`,
    ].join('\n') + '\n',
  );
  if (failed) {
    err(`producing to ${TOPICS.stockAdjustments} failed: ${errorMessage(failed)}`);
    return 1;
  }
  return interrupted && (o.seconds !== undefined || o.count !== undefined) ? 130 : 0;
}
