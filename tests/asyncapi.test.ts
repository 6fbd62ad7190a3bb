/**
 * docs/asyncapi.yaml must describe what docs/websocket.md and lib/topics.ts say, and stay
 * internally consistent (no network, no stack):
 *   - it is AsyncAPI 2.6.0 and parses;
 *   - every server frame `type` and client frame `op` named in docs/websocket.md is a message of
 *     the WebSocket channel (subscribe = server frames, publish = client frames);
 *   - every topic in TOPICS is a channel on the Kafka server;
 *   - every `$ref` resolves: internal ones to a node of the document, `.avsc` ones to an existing,
 *     valid Avro schema;
 *   - the JSON frames written out in docs/websocket.md, and the document's own examples, are
 *     valid against the message payload schemas.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../lib/config.ts';
import { TOPICS } from '../lib/topics.ts';

const DOCS_DIR = path.join(PROJECT_ROOT, 'docs');
const ASYNCAPI_FILE = path.join(DOCS_DIR, 'asyncapi.yaml');
const WEBSOCKET_MD = fs.readFileSync(path.join(DOCS_DIR, 'websocket.md'), 'utf8');
const WS_CHANNEL = '/v1/stream';

type Node = Record<string, unknown>;

const doc = parse(fs.readFileSync(ASYNCAPI_FILE, 'utf8')) as Node;

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function node(value: unknown, where: string): Node {
  if (!isNode(value)) throw new Error(`${where} is not an object`);
  return value;
}

/** Resolves an internal `#/a/b` pointer. */
function pointer(ref: string): unknown {
  let at: unknown = doc;
  for (const raw of ref.replace(/^#\//, '').split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isNode(at) || !(key in at)) return undefined;
    at = at[key];
  }
  return at;
}

function deref(value: unknown): unknown {
  let at = value;
  for (let i = 0; i < 10 && isNode(at) && typeof at.$ref === 'string' && at.$ref.startsWith('#/'); i++) at = pointer(at.$ref);
  return at;
}

/** Every `$ref` string in the document, with where it is. */
function refs(value: unknown, where = '', out: Array<{ ref: string; where: string }> = []): Array<{ ref: string; where: string }> {
  if (Array.isArray(value)) value.forEach((v, i) => refs(v, `${where}/${i}`, out));
  else if (isNode(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') out.push({ ref: v, where });
      else refs(v, `${where}/${k}`, out);
    }
  }
  return out;
}

/** The messages of one operation (a single message or `oneOf`), dereferenced. */
function operationMessages(channel: string, op: 'publish' | 'subscribe'): Node[] {
  const operation = node(node(node(doc.channels, 'channels')[channel], channel)[op], `${channel}.${op}`);
  const message = deref(operation.message);
  const list = isNode(message) && Array.isArray(message.oneOf) ? message.oneOf : [message];
  return list.map((m, i) => node(deref(m), `${channel}.${op}.message[${i}]`));
}

/** The `const` of a payload property (`type` for server frames, `op` for client frames). */
function payloadConst(message: Node, property: string): unknown {
  const payload = node(deref(message.payload), 'payload');
  const properties = node(payload.properties, 'payload.properties');
  const prop = node(deref(properties[property]), `payload.properties.${property}`);
  return prop.const;
}

function namedInDoc(key: 'type' | 'op'): string[] {
  return [...new Set([...WEBSOCKET_MD.matchAll(new RegExp(`"${key}"\\s*:\\s*"([a-z_]+)"`, 'g'))].map((m) => m[1] as string))].sort();
}

/** Frames written out in full in docs/websocket.md (inline code and ```json blocks) that parse as JSON. */
function framesInDoc(): Node[] {
  const candidates = [...WEBSOCKET_MD.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  candidates.push(...[...WEBSOCKET_MD.matchAll(/`(\{[^`]*\})`/g)].map((m) => m[1] as string));
  const out: Node[] = [];
  for (const text of candidates) {
    try {
      const value: unknown = JSON.parse(text);
      if (isNode(value)) out.push(value);
    } catch {
      // a template with placeholders (`[...]`, `<cursor>`): not a frame
    }
  }
  return out;
}

function validator() {
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addSchema({ $id: 'https://invsync.local/asyncapi.json', components: doc.components });
  return (schemaPath: string, data: unknown): string[] => {
    const validate = ajv.getSchema(`https://invsync.local/asyncapi.json${schemaPath}`);
    if (!validate) throw new Error(`no schema at ${schemaPath}`);
    return validate(data) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
  };
}

describe('docs/asyncapi.yaml', () => {
  it('is an AsyncAPI 2.6.0 document with the gateway and Kafka servers', () => {
    expect(doc.asyncapi).toBe('2.6.0');
    const servers = node(doc.servers, 'servers');
    expect(node(servers.gateway, 'gateway')).toMatchObject({ protocol: 'ws', url: 'ws://127.0.0.1:18080' });
    expect(node(servers.kafka, 'kafka')).toMatchObject({ protocol: 'kafka', url: '127.0.0.1:19092' });
    const ws = node(node(node(node(doc.channels, 'channels')[WS_CHANNEL], WS_CHANNEL).bindings, 'bindings').ws, 'ws binding');
    const query = node(node(ws.query, 'query').properties, 'query.properties');
    expect(Object.keys(query).sort()).toEqual(['channel', 'sales_channel', 'token']);
    expect(node(query.channel, 'channel').enum).toEqual(['storefront', 'wms', 'erp']);
  });

  it('has every server frame type and client frame op of docs/websocket.md', () => {
    const types = namedInDoc('type');
    const ops = namedInDoc('op');
    // sanity: the doc was read
    expect(types).toEqual(expect.arrayContaining(['welcome', 'snapshot', 'deltas', 'error', 'pong', 'subscribed', 'unsubscribed']));
    expect(ops).toEqual(expect.arrayContaining(['subscribe', 'unsubscribe', 'ping']));

    const serverTypes = operationMessages(WS_CHANNEL, 'subscribe').map((m) => payloadConst(m, 'type'));
    const clientOps = operationMessages(WS_CHANNEL, 'publish').map((m) => payloadConst(m, 'op'));
    for (const type of types) expect(serverTypes, `server frame "${type}"`).toContain(type);
    for (const op of ops) expect(clientOps, `client frame "${op}"`).toContain(op);
  });

  it('has every Kafka topic of lib/topics.ts as a channel on the Kafka server', () => {
    const channels = node(doc.channels, 'channels');
    for (const topic of Object.values(TOPICS)) {
      const channel = node(channels[topic], `channel ${topic}`);
      expect(channel.servers, topic).toEqual(['kafka']);
      expect(channel.publish ?? channel.subscribe, `${topic} has an operation`).toBeDefined();
    }
  });

  it('describes the Kafka messages: Avro with the schema files, outbox and DLQ headers', () => {
    const message = (topic: string) => node(operationMessages(topic, topic === TOPICS.stockAdjustments ? 'publish' : 'subscribe')[0], topic);
    for (const [topic, file] of [
      [TOPICS.stockDeltas, 'StockDelta.avsc'],
      [TOPICS.stockLevels, 'StockLevel.avsc'],
      [TOPICS.stockAlerts, 'StockAlert.avsc'],
      [TOPICS.stockAdjustments, 'StockAdjustment.avsc'],
    ] as const) {
      const m = message(topic);
      expect(m.schemaFormat, topic).toBe('application/vnd.apache.avro;version=1.9.0');
      expect(m.payload, topic).toEqual({ $ref: `../schemas/avro/${file}` });
    }
    const headerNames = (topic: string) => Object.keys(node(node(message(topic).headers, `${topic} headers`).properties, 'properties')).sort();
    expect(headerNames(TOPICS.ordersEvents)).toEqual(['createdAt', 'eventType', 'id']);
    expect(headerNames(TOPICS.dlq)).toEqual(['dlq.adjustment.id', 'dlq.failed.at', 'dlq.processor', 'dlq.reason', 'dlq.source.offset', 'dlq.source.partition', 'dlq.source.topic']);
    const levels = node(node(node(doc.channels, 'channels')[TOPICS.stockLevels], 'stock.levels').bindings, 'bindings');
    expect(node(node(levels.kafka, 'kafka').topicConfiguration, 'topicConfiguration')['cleanup.policy']).toEqual(['compact']);
  });

  it('resolves every $ref; every referenced .avsc exists and is a valid Avro schema', () => {
    const all = refs(doc);
    const avsc = all.filter((r) => r.ref.endsWith('.avsc'));
    expect(avsc.length).toBeGreaterThanOrEqual(3);
    for (const { ref, where } of all) {
      if (ref.startsWith('#/')) {
        expect(pointer(ref), `${ref} at ${where}`).toBeDefined();
        continue;
      }
      expect(ref, `${where}: only internal and .avsc references`).toMatch(/\.avsc$/);
      const file = path.resolve(DOCS_DIR, ref);
      expect(fs.existsSync(file), `${ref} (${file}) at ${where}`).toBe(true);
      const type = avro.Type.forSchema(JSON.parse(fs.readFileSync(file, 'utf8')));
      expect(type.typeName, ref).toBe('record');
    }
  });

  it('validates the frames written out in docs/websocket.md and its own examples', () => {
    const validate = validator();
    const byType = new Map<unknown, Node>();
    for (const m of operationMessages(WS_CHANNEL, 'subscribe')) byType.set(`type:${String(payloadConst(m, 'type'))}`, m);
    for (const m of operationMessages(WS_CHANNEL, 'publish')) byType.set(`op:${String(payloadConst(m, 'op'))}`, m);
    const schemaOf = (message: Node) => String(node(message.payload, 'payload').$ref);

    const frames = framesInDoc();
    let checked = 0;
    for (const frame of frames) {
      if (typeof frame.sku === 'string' && frame.type === undefined) {
        expect(validate('#/components/schemas/StorefrontItem', frame), JSON.stringify(frame)).toEqual([]);
        checked++;
        continue;
      }
      const key = typeof frame.type === 'string' ? `type:${frame.type}` : `op:${String(frame.op)}`;
      const message = byType.get(key);
      expect(message, `a message for ${JSON.stringify(frame)}`).toBeDefined();
      expect(validate(schemaOf(message as Node), frame), JSON.stringify(frame)).toEqual([]);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(5);

    // the document's own examples
    for (const message of byType.values()) {
      for (const example of (message.examples ?? []) as Node[]) {
        expect(validate(schemaOf(message), example.payload), `${String(message.name)}: ${JSON.stringify(example.payload)}`).toEqual([]);
      }
    }
    // a wms item is a full item; a storefront item is not
    const full = { sku: 'S', available: 1, version: 2, commitTs: 3, deleted: false, onHand: 1, reserved: 0, safetyStock: 0, locations: [{ locationId: 'WH-1', onHand: 1, reserved: 0, safetyStock: 0, available: 1, version: 2 }] };
    expect(validate('#/components/schemas/FullItem', full)).toEqual([]);
    expect(validate('#/components/schemas/FullItem', { sku: 'S', available: 1, version: 2, commitTs: 3 })).not.toEqual([]);
    expect(validate('#/components/schemas/SnapshotFrame', { type: 'snapshot', cursor: '1-0', items: [full], unknown: [] })).toEqual([]);
    expect(validate('#/components/schemas/ErrorFrame', { type: 'error', code: 'nope', message: '' })).not.toEqual([]);
  });

  it('gives every operation a unique operationId and binds every channel to a declared server', () => {
    const servers = Object.keys(node(doc.servers, 'servers'));
    const ids: string[] = [];
    for (const [name, raw] of Object.entries(node(doc.channels, 'channels'))) {
      const channel = node(raw, name);
      for (const server of channel.servers as string[]) expect(servers, name).toContain(server);
      for (const op of ['publish', 'subscribe'] as const) {
        const operation = channel[op];
        if (isNode(operation)) ids.push(String(operation.operationId));
      }
    }
    expect(new Set(ids).size).toBe(ids.length);
  });
});
