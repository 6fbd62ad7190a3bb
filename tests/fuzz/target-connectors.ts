/**
 * One inbound-connector fuzz run: `tsx connectors/main.ts` as a child (private consumer group,
 * starting at the end of `stock.adjustments`), a storm of Avro and garbage messages on the real
 * topic — valid adjustments for the run's SKUs, schema-valid records that break the rules,
 * mutated Avro bytes, unknown schema ids, non-Avro frames, wrong keys — then the checks: the
 * child is alive, every partition moved past the storm (a probe adjustment per partition is
 * applied), the dead letters equal the messages the rules refuse, and on hand in Postgres equals
 * what the pure rules (connectors/inbound/domain/decide.ts) say the valid ones leave.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import avro from 'avsc';
import pg from 'pg';
import { loadAvroSchema, registerStockSchemas } from '../../lib/avro-registry.ts';
import { loadConfig } from '../../lib/config.ts';
import { createKafka } from '../../lib/kafka.ts';
import { TOPICS } from '../../lib/topics.ts';
import type { StockAdjustment } from '../../schemas/generated/avro-types.ts';
import { adjustmentHash, validateAdjustment } from '../../connectors/inbound/domain/adjustment.ts';
import { decideBatch, rowKey, type LedgerEntry, type RowState } from '../../connectors/inbound/domain/decide.ts';
import { child, fuzzNames, seedSkus } from './platform.ts';
import { countDlq } from './dlq.ts';
import { caseRng, mutateJson, type Rng } from './rng.ts';
import type { Violation } from './report.ts';
import type { TargetRun } from './target-gateway.ts';

export interface ConnectorsStats {
  cases: number;
  poison: number;
  applied: number;
  duplicates: number;
  dlq: number;
  dlqReasons: Record<string, number>;
  /** Messages whose key does not carry the run id (their dead letters cannot be told from others'). */
  uncounted: number;
}

const KINDS = ['RECEIPT', 'PICK', 'COUNT', 'DAMAGE', 'RETURN', 'TRANSFER'] as const;

function adjustment(r: Rng, id: string, skus: string[], locations: string[], n: number): StockAdjustment {
  const kind = r.pick(KINDS);
  const locationId = r.pick(locations);
  return {
    adjustmentId: `${id}-adj-${n}`,
    sku: r.pick(skus),
    locationId,
    kind,
    quantity: r.int(kind === 'COUNT' ? 0 : 1, 40),
    toLocationId: kind === 'TRANSFER' ? locations.find((l) => l !== locationId)! : null,
    occurredAt: Date.now(),
    sourceSystem: 'fuzz',
    reference: r.bool() ? null : `ref-${n}`,
    expectedOnHand: null,
    expectedVersion: null,
    countedAt: null,
  };
}

export async function runConnectorsTarget(o: { seed: number; cases: number; first?: number; deadline?: number; log?: (line: string) => void }): Promise<TargetRun<ConnectorsStats>> {
  const log = o.log ?? (() => undefined);
  const config = loadConfig(process.env);
  // The last SKU is the probes' own: probes go to every partition, so they must not share a SKU (and its order) with the storm.
  const names = fuzzNames('cn', 4);
  const stormSkus = names.skus.slice(0, 3);
  const probeSku = names.skus[3]!;
  const pool = new pg.Pool({ connectionString: config.pg.url, max: 2 });
  const kafka = createKafka({ connection: config.kafka, clientId: `${names.id}-fuzz` });
  const producer = kafka.producer();
  const connectors = child('connectors', names);
  const group = `${names.id}-inbound`;
  const violations: Violation[] = [];
  const stats: ConnectorsStats = { cases: 0, poison: 0, applied: 0, duplicates: 0, dlq: 0, dlqReasons: {}, uncounted: 0 };
  const fail = (problem: string, detail?: string, index = -1, input = `${stats.cases} adjustment messages`) =>
    violations.push({ target: 'connectors', seed: o.seed, index, kind: 'adjustments', input, problem, ...(detail ? { detail } : {}) });
  const dlq = await countDlq(kafka, { id: names.id, group });
  const type = avro.Type.forSchema(loadAvroSchema('StockAdjustment') as avro.Schema);
  try {
    const codecs = await registerStockSchemas(config.registry.url);
    const frame = (schemaId: number, payload: Buffer) => {
      const h = Buffer.alloc(5);
      h.writeUInt32BE(schemaId, 1);
      return Buffer.concat([h, payload]);
    };
    await seedSkus(pool, names, 100);
    await producer.connect();
    await connectors.start();
    const admin = kafka.admin();
    await admin.connect();
    const partitions = (await admin.fetchTopicOffsets(TOPICS.stockAdjustments)).length;
    await admin.disconnect();

    // The model: rows, ledger and catalog as the rules see them.
    const rows = new Map<string, RowState>();
    for (const s of names.skus) for (const l of names.locations) rows.set(rowKey(s, l), { onHand: 100, reserved: 0 });
    const ledger = new Map<string, LedgerEntry>();
    const state = { rows, ledger, products: new Set(names.skus), locations: new Set(names.locations) };
    let n = 0;
    const send = async (key: Buffer | string | null, value: Buffer | null, partition?: number) =>
      producer.send({ topic: TOPICS.stockAdjustments, acks: -1, messages: [{ key, value, ...(partition !== undefined ? { partition } : {}) }] });

    // Probes: a valid RECEIPT of 1 per partition; applied means the consumer is live on it (or past the storm).
    const probe = async (round: string): Promise<string[]> => {
      const ids: string[] = [];
      for (let p = 0; p < partitions; p++) {
        const a: StockAdjustment = { ...adjustment(caseRng(o.seed, 1e6 + p), names.id, [probeSku], names.locations, n++), kind: 'RECEIPT', quantity: 1, toLocationId: null, adjustmentId: `${names.id}-probe-${round}-${p}` };
        ids.push(a.adjustmentId);
        await send(a.sku, frame(codecs.stockAdjustment.schemaId, type.toBuffer(a)), p);
      }
      return ids;
    };
    const applied = async (ids: string[]) => Number((await pool.query(`SELECT count(*) AS n FROM applied_adjustments WHERE adjustment_id = ANY($1)`, [ids])).rows[0].n) === ids.length;
    const waitApplied = async (ids: string[], ms: number) => {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        if (await applied(ids)) return true;
        await sleep(200);
      }
      return false;
    };
    // The consumer starts at the end: a probe round it has applied proves it is live.
    let live = false;
    for (let round = 0; round < 20 && !live; round++) live = await waitApplied(await probe(`start${round}`), 3000);
    if (!live) throw new Error('the connectors never applied a probe adjustment');
    log(`connectors pid ${connectors.pid} live on ${partitions} partitions`);
    // Start-up probes sent before the consumer joined were never applied: the model starts from Postgres.
    await sleep(1000);
    const { rows: start } = await pool.query<{ sku: string; location_id: string; on_hand: number; reserved: number }>(`SELECT sku, location_id, on_hand, reserved FROM stock_levels WHERE sku = ANY($1)`, [names.skus]);
    for (const row of start) rows.set(rowKey(row.sku, row.location_id), { onHand: row.on_hand, reserved: row.reserved });
    const history: Array<{ id: string; sku: string }> = [];
    const expected: Array<{ index: number; label: string; value: string | null }> = [];

    const first = o.first ?? 0;
    for (let i = first; i < first + o.cases; i++) {
      if (o.deadline !== undefined && Date.now() > o.deadline) break;
      const r = caseRng(o.seed, i);
      const a = adjustment(r, names.id, stormSkus, names.locations, n++);
      // Compare-and-set on some: the on hand the model expects now (its rows are Postgres' in send
      // order), or one off; now and then an expected version no row has.
      if (r.bool(0.25)) a.expectedOnHand = Math.max(0, (rows.get(rowKey(a.sku, a.locationId))?.onHand ?? 0) + r.pick([0, 0, 1, -1]));
      if (r.bool(0.05)) a.expectedVersion = r.int(0, 2 ** 40);
      const kind = r.weighted<() => string>([
        [4, () => 'valid'],
        [3, () => 'record'],
        [1, () => 'duplicate'],
        [2, () => 'bytes'],
        [1, () => 'schema-id'],
        [1, () => 'not-avro'],
        [1, () => 'key'],
      ])();
      let key: Buffer | string | null = a.sku;
      let value: Buffer | null;
      let model: unknown = a;
      if (kind === 'valid') value = frame(codecs.stockAdjustment.schemaId, type.toBuffer(a));
      else if (kind === 'duplicate') {
        // An earlier id (same SKU, so the same partition and a fixed order): a duplicate or a conflict.
        const earlier = history.length ? history[Math.max(0, history.length - r.int(1, 5))]! : { id: a.adjustmentId, sku: a.sku };
        const again = { ...a, sku: earlier.sku, adjustmentId: earlier.id };
        if (r.bool()) again.quantity = a.quantity; // same id, maybe another payload: duplicate or conflict
        model = again;
        key = again.sku;
        value = frame(codecs.stockAdjustment.schemaId, type.toBuffer(again));
      } else if (kind === 'record') {
        // Schema-valid, rule-breaking: a mutated field that Avro can still carry.
        const m = mutateJson(r, a) as Record<string, unknown>;
        const merged = { ...a, ...m } as StockAdjustment;
        model = merged;
        key = typeof merged.sku === 'string' ? merged.sku : a.sku;
        value = type.isValid(merged) ? frame(codecs.stockAdjustment.schemaId, type.toBuffer(merged)) : frame(codecs.stockAdjustment.schemaId, r.bytes(r.size(200)));
        if (!type.isValid(merged)) model = undefined;
      } else if (kind === 'bytes') {
        const good = type.toBuffer(a);
        for (let k = r.int(1, 4); k > 0; k--) good[r.int(0, good.length - 1)] = r.int(0, 255);
        value = frame(codecs.stockAdjustment.schemaId, r.bool(0.3) ? good.subarray(0, r.int(0, good.length)) : good);
        try {
          model = type.fromBuffer(value.subarray(5));
        } catch {
          model = undefined;
        }
      } else if (kind === 'schema-id') {
        value = frame(r.pick([0, 999_999, codecs.stockDelta.schemaId, codecs.stockLevel.schemaId, 2 ** 32 - 1]), type.toBuffer(a));
        model = undefined;
      } else if (kind === 'not-avro') {
        value = r.pick([Buffer.from(JSON.stringify(a)), Buffer.alloc(0), Buffer.from([0]), Buffer.from([1, 0, 0, 0, 1]), r.bytes(r.size(300))]);
        model = undefined;
        if (r.bool(0.2)) value = null;
      } else {
        value = frame(codecs.stockAdjustment.schemaId, type.toBuffer(a));
        key = r.pick([null, `${a.sku} `, `${names.id}-other`, Buffer.concat([r.bytes(8), Buffer.from(names.id)])]);
      }
      // What the rules say.
      let expectDlq = true;
      if (model !== undefined && value !== null) {
        const v = validateAdjustment(model, { strict: false });
        if (v.ok && (key === null ? null : Buffer.from(key).toString('utf8')) === v.value.sku) {
          const d = decideBatch([{ adjustment: v.value, hash: adjustmentHash(v.value) }], state).decisions[0]!;
          if (d.outcome === 'applied') {
            for (const c of d.changes) rows.set(rowKey(v.value.sku, c.locationId), { onHand: c.onHandAfter, reserved: 0 });
            ledger.set(v.value.adjustmentId, { hash: adjustmentHash(v.value), result: null });
            stats.applied++;
            expectDlq = false;
          } else if (d.outcome === 'duplicate') {
            stats.duplicates++;
            expectDlq = false;
          }
        }
      }
      if (model !== undefined && typeof (model as StockAdjustment).adjustmentId === 'string' && typeof (model as StockAdjustment).sku === 'string') {
        history.push({ id: (model as StockAdjustment).adjustmentId, sku: (model as StockAdjustment).sku });
      }
      stats.cases++;
      // A null key cannot be matched to this run; such messages are sent, but only counted when keyed.
      // Dead letters are matched to this run by key: a key without the run id (null, or a SKU the
      // mutation garbled) is sent all the same but cannot be counted.
      const countable = key !== null && Buffer.from(key).toString('utf8').includes(names.id);
      if (!countable) stats.uncounted++;
      if (expectDlq && countable) {
        stats.poison++;
        expected.push({ index: i, label: `${kind}: ${JSON.stringify(model)?.slice(0, 300)}`, value: value === null ? null : value.toString('latin1') });
      }
      await send(key, value);
      if (!connectors.alive) {
        const exit = connectors.crashes.at(-1);
        fail(`connectors exited (code ${exit?.code}, signal ${exit?.signal})`, exit?.tail.slice(-10).join('\n'), i, `${kind}: ${JSON.stringify(model)?.slice(0, 200)}`);
        break;
      }
      if (stats.cases % 100 === 0) log(`connectors: ${stats.cases} messages (${stats.poison} poison), dead letters so far ${dlq.count()}`);
    }

    const probes = await probe('after');
    if (!(await waitApplied(probes, 60_000))) fail('a partition stopped: an adjustment produced after the storm was never applied', connectors.logTail(6).join('\n'));
    const deadline = Date.now() + 10_000;
    while (dlq.count() < stats.poison && Date.now() < deadline) await sleep(200);
    await sleep(1000);
    stats.dlq = dlq.count();
    stats.dlqReasons = dlq.reasons();
    if (stats.dlq !== stats.poison) {
      // Name the messages: dead letters carry the original value.
      const got = dlq.records();
      const missing = expected.filter((e) => !got.some((g) => g.value === e.value));
      const extra = got.filter((g) => !expected.some((e) => e.value === g.value));
      fail(
        `dead letters ${stats.dlq} != poison messages injected ${stats.poison}`,
        [JSON.stringify(stats.dlqReasons), ...missing.map((m) => `expected, not dead-lettered: case ${m.index} ${m.label}`), ...extra.map((x) => `dead-lettered, not expected: ${x.reason} ${JSON.stringify(x.value?.slice(0, 200))}`)].join('\n'),
      );
    }
    const { rows: pgRows } = await pool.query<{ sku: string; location_id: string; on_hand: number }>(`SELECT sku, location_id, on_hand FROM stock_levels WHERE sku = ANY($1)`, [stormSkus]);
    for (const row of pgRows) {
      const want = rows.get(rowKey(row.sku, row.location_id))?.onHand;
      if (want !== row.on_hand) fail(`on hand of ${row.sku}@${row.location_id} is ${row.on_hand}, the rules say ${want}`);
    }
    if (!connectors.alive) fail('connectors not alive after the storm');
    return { stats, violations };
  } finally {
    await connectors.stop();
    await dlq.stop();
    await producer.disconnect();
    await pool.end();
  }
}
