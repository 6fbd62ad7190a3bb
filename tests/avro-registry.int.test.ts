/**
 * The platform's Avro schemas against the real schema registry: registration is idempotent and
 * sets BACKWARD compatibility, values round-trip through the Confluent wire format, invalid
 * values are refused with a SchemaError, and the registry refuses incompatible evolutions.
 * Anything that registers a changed schema does so under a unique test subject, never under
 * the real `stock.*` subjects.
 */
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createSchemaRegistry,
  decodeAvro,
  loadAvroSchema,
  registerAvroSchema,
  registerStockSchemas,
  setSubjectCompatibility,
  STOCK_SUBJECTS,
  type StockCodecs,
} from '../lib/avro-registry.ts';
import { COMPATIBILITY } from '@kafkajs/confluent-schema-registry';
import { SchemaError } from '../lib/errors.ts';
import type { StockAdjustment, StockDelta, StockLevel } from '../schemas/generated/avro-types.ts';
import { testConfig, unique } from './helpers.ts';

const config = testConfig();
const registryUrl = config.registry.url;

async function subjectCompatibility(subject: string): Promise<string | undefined> {
  const res = await fetch(`${registryUrl}/config/${encodeURIComponent(subject)}`, {
    headers: { accept: 'application/vnd.schemaregistry.v1+json' },
  });
  expect(res.status, `GET config/${subject}`).toBe(200);
  const body = (await res.json()) as { compatibilityLevel?: string; compatibility?: string };
  return body.compatibilityLevel ?? body.compatibility;
}

const commitTs = Date.parse('2026-11-21T04:00:00.123Z');

const deltaWithLocation: StockDelta = {
  sku: 'SKU-000001',
  channels: null,
  available: 37,
  previousAvailable: 40,
  onHand: 50,
  reserved: 8,
  safetyStock: 5,
  version: 1234,
  deleted: false,
  commitTs,
  locationId: 'WH-1',
  location: { locationId: 'WH-1', onHand: 20, reserved: 3, safetyStock: 2, available: 15, version: 1234 },
};

const deltaWithoutLocation: StockDelta = {
  sku: 'SKU-000002',
  channels: null,
  available: 0,
  previousAvailable: null,
  onHand: 0,
  reserved: 0,
  safetyStock: 0,
  version: 2 ** 40, // beyond int32: longs stay exact JS numbers
  deleted: true,
  commitTs,
  locationId: null,
  location: null,
};

const level: StockLevel = {
  sku: 'SKU-000003',
  channels: null,
  incoming: null,
  available: 12,
  onHand: 20,
  reserved: 5,
  safetyStock: 3,
  version: 99,
  deleted: false,
  commitTs,
  locations: [
    { locationId: 'WH-1', onHand: 15, reserved: 5, safetyStock: 1, available: 9, version: 98 },
    { locationId: 'WH-2', onHand: 5, reserved: 0, safetyStock: 2, available: 3, version: 99 },
  ],
};

const adjustment: StockAdjustment = {
  adjustmentId: 'adj-0001',
  sku: 'SKU-000001',
  locationId: 'WH-1',
  kind: 'TRANSFER',
  quantity: 4,
  toLocationId: 'WH-2',
  occurredAt: commitTs,
  sourceSystem: 'wms-test',
  reference: null,
  expectedOnHand: null,
  expectedVersion: null,
  countedAt: null,
};

describe('Avro stock schemas in the registry', () => {
  let codecs: StockCodecs;

  beforeAll(async () => {
    codecs = await registerStockSchemas(registryUrl);
  });

  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('registers under the TopicNameStrategy subjects, idempotently', async () => {
    expect(codecs.stockDelta.subject).toBe('stock.deltas-value');
    expect(codecs.stockLevel.subject).toBe('stock.levels-value');
    expect(codecs.stockAdjustment.subject).toBe('stock.adjustments-value');
    const again = await registerStockSchemas(registryUrl);
    const registry = createSchemaRegistry(registryUrl);
    for (const key of ['stockDelta', 'stockLevel', 'stockAdjustment'] as const) {
      expect(codecs[key].schemaId).toBeGreaterThan(0);
      expect(again[key].schemaId, `${key} registered twice`).toBe(codecs[key].schemaId);
      expect(await registry.getLatestSchemaId(codecs[key].subject)).toBe(codecs[key].schemaId);
    }
  });

  it('sets BACKWARD compatibility on every subject', async () => {
    for (const { subject } of Object.values(STOCK_SUBJECTS)) {
      expect(await subjectCompatibility(subject)).toBe('BACKWARD');
    }
  });

  it.each([
    ['with a location', deltaWithLocation],
    ['without a location', deltaWithoutLocation],
  ])('round-trips a StockDelta %s', async (_label, delta) => {
    const encoded = await codecs.stockDelta.encode(delta);
    expect(encoded[0]).toBe(0);
    expect(encoded.readInt32BE(1)).toBe(codecs.stockDelta.schemaId);
    // A fresh client, so the writer schema is fetched by id from the registry.
    expect(await decodeAvro<StockDelta>(createSchemaRegistry(registryUrl), encoded)).toEqual(delta);
  });

  it('processes racing to set a new subject\'s compatibility all succeed (Apicurio answers the losers 409)', async () => {
    const subject = unique('race-subject');
    const results = await Promise.all(Array.from({ length: 6 }, () => setSubjectCompatibility(registryUrl, subject, COMPATIBILITY.BACKWARD)));
    expect(results).toEqual(Array(6).fill(true));
    expect(await subjectCompatibility(subject)).toBe('BACKWARD');
  });

  it('round-trips a StockLevel with two locations', async () => {
    const encoded = await codecs.stockLevel.encode(level);
    const decoded = await decodeAvro<StockLevel>(createSchemaRegistry(registryUrl), encoded);
    expect(decoded).toEqual(level);
    expect(decoded.locations.map((l) => l.locationId)).toEqual(['WH-1', 'WH-2']);
  });

  it('round-trips a StockAdjustment', async () => {
    const encoded = await codecs.stockAdjustment.encode(adjustment);
    expect(await decodeAvro<StockAdjustment>(createSchemaRegistry(registryUrl), encoded)).toEqual(adjustment);
  });

  it('refuses invalid values with a SchemaError naming the schema and the field', async () => {
    const wrongType = { ...deltaWithLocation, available: '37' } as unknown as StockDelta;
    const err = await codecs.stockDelta.encode(wrongType).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaError);
    expect((err as SchemaError).code).toBe('schema_invalid');
    expect((err as Error).message).toMatch(/StockDelta/);
    expect((err as Error).message).toMatch(/available: expected int, got "37"/);

    const { sku: _sku, ...withoutSku } = deltaWithLocation;
    await expect(codecs.stockDelta.encode(withoutSku as StockDelta)).rejects.toThrow(/StockDelta.*sku: expected string/);

    const nestedWrong = { ...level, locations: [{ ...level.locations[0]!, onHand: 1.5 }] };
    await expect(codecs.stockLevel.encode(nestedWrong)).rejects.toThrow(/StockLevel.*locations\.0\.onHand/);

    const badKind = { ...adjustment, kind: 'TELEPORT' } as unknown as StockAdjustment;
    await expect(codecs.stockAdjustment.encode(badKind)).rejects.toBeInstanceOf(SchemaError);
  });

  it('refuses to decode a buffer that is not a Confluent-framed Avro message', async () => {
    const registry = createSchemaRegistry(registryUrl);
    await expect(decodeAvro(registry, Buffer.from('{"sku":"x"}'))).rejects.toBeInstanceOf(SchemaError);
    // A valid frame pointing at a schema id the registry does not know.
    const unknownId = Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0, 0x02]);
    await expect(decodeAvro(registry, unknownId)).rejects.toBeInstanceOf(SchemaError);
  });

  it('lets the registry refuse a BACKWARD-incompatible change and accept a compatible one (test subject)', async () => {
    const subject = `${unique('stock-deltas-compat')}-value`;
    const registry = createSchemaRegistry(registryUrl);
    const base = loadAvroSchema('StockDelta') as { fields: object[] };
    const v1 = await registerAvroSchema(registry, registryUrl, subject, base);
    expect(await subjectCompatibility(subject)).toBe('BACKWARD');

    // A new required field: data written with v1 could not be read. Refused.
    const incompatible = { ...base, fields: [...base.fields, { name: 'channel', type: 'string', doc: 'test' }] };
    const refused = await registerAvroSchema(registry, registryUrl, subject, incompatible).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SchemaError);
    expect((refused as Error).message).toMatch(/StockDelta.*compat/);
    expect(await registry.getLatestSchemaId(subject)).toBe(v1);

    // A new optional field with a default: accepted as a new version.
    const compatible = {
      ...base,
      fields: [...base.fields, { name: 'channel', type: ['null', 'string'], default: null, doc: 'test' }],
    };
    const v2 = await registerAvroSchema(registry, registryUrl, subject, compatible);
    expect(v2).not.toBe(v1);
    expect(await registry.getLatestSchemaId(subject)).toBe(v2);
  });

  it('sets the compatibility after the first registration when the registry refuses config for a new subject', async () => {
    const subject = `${unique('stock-levels-order')}-value`;
    const realFetch = globalThis.fetch;
    let refused = 0;
    vi.stubGlobal('fetch', async (input: string | URL | Request, init?: RequestInit) => {
      const url = String(input instanceof Request ? input.url : input);
      if (init?.method === 'PUT' && url.endsWith(`/config/${encodeURIComponent(subject)}`) && refused === 0) {
        refused += 1;
        return new Response(JSON.stringify({ error_code: 40401, message: 'Subject not found' }), { status: 404 });
      }
      return realFetch(input, init);
    });
    const id = await registerAvroSchema(createSchemaRegistry(registryUrl), registryUrl, subject, loadAvroSchema('StockLevel'));
    vi.unstubAllGlobals();
    expect(refused).toBe(1);
    expect(id).toBeGreaterThan(0);
    expect(await subjectCompatibility(subject)).toBe('BACKWARD');
  });
});
