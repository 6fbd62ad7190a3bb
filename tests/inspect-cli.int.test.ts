/**
 * `npm run inspect` run as a user would (a child process) against the real stack: topics, lag,
 * connectors, and reading topics with Avro decoded through the registry.
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerStockSchemas } from '../lib/avro-registry.ts';
import { PROJECT_ROOT } from '../lib/config.ts';
import { TOPICS } from '../lib/topics.ts';
import type { StockLevel } from '../schemas/generated/avro-types.ts';
import { testConfig, testKafka, unique } from './helpers.ts';

const config = testConfig();
const kafka = testKafka(config);
const CLI = path.join(PROJECT_ROOT, 'tools', 'cli', 'inspect.ts');
const privateTopic = unique('inspect');
const group = unique('inspect-grp');

function inspect(args: string[], env: Record<string, string> = {}) {
  const res = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

const jsonLines = (text: string) =>
  text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { topic: string; partition: number; offset: string; key: string | null; headers: Record<string, string>; format: string; schemaId?: number; value: unknown });

beforeAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: privateTopic, numPartitions: 2 }] });
  await admin.disconnect();
});

afterAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteGroups([group]).catch(() => undefined);
  await admin.deleteTopics({ topics: [privateTopic] }).catch(() => undefined);
  await admin.disconnect();
});

describe('inspect command', () => {
  it('topics lists the platform topics with partitions and cleanup policy', () => {
    const res = inspect(['topics', '--json']);
    expect(res.code).toBe(0);
    const topics = JSON.parse(res.stdout) as Array<{ topic: string; partitions: number; cleanupPolicy: string; messages: number }>;
    expect(topics.find((t) => t.topic === TOPICS.stockDeltas)).toMatchObject({ partitions: 6, cleanupPolicy: 'delete' });
    expect(topics.find((t) => t.topic === TOPICS.stockLevels)).toMatchObject({ cleanupPolicy: 'compact' });
    expect(topics.some((t) => t.topic.startsWith('__'))).toBe(false);
    const table = inspect(['topics']);
    expect(table.stdout).toMatch(/^TOPIC\s+PARTITIONS\s+MESSAGES\s+CLEANUP$/m);
    expect(table.stdout).toMatch(/^stock\.deltas\s+6\s+\d+\s+delete$/m);
  });

  it('reads stock.levels, decoding Avro into JSON: the last N of a key, and from the beginning', async () => {
    // A SKU of this test only, ending deleted (no stock rows), so a bootstrapping consumer ignores it.
    const sku = unique('INSPECT').toUpperCase();
    const codecs = await registerStockSchemas(config.registry.url);
    const level = (version: number, deleted = false): StockLevel => ({
      sku,
      channels: null,
      incoming: null,
      available: deleted ? 0 : version,
      onHand: deleted ? 0 : version,
      reserved: 0,
      safetyStock: 0,
      version,
      deleted,
      commitTs: Date.now(),
      locations: deleted ? [] : [{ locationId: 'WH-1', onHand: version, reserved: 0, safetyStock: 0, available: version, version }],
    });
    const produced = [level(1), level(2), level(3, true)];
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: TOPICS.stockLevels,
      messages: await Promise.all(
        produced.map(async (v, i) => ({ key: sku, value: await codecs.stockLevel.encode(v), headers: i === 0 ? { trace: 'inspect-test' } : {} })),
      ),
    });
    await producer.disconnect();

    const mine = inspect([TOPICS.stockLevels, '--key', sku, '--limit', '3', '--json']);
    expect(mine.code).toBe(0);
    const lines = jsonLines(mine.stdout);
    expect(lines.map((l) => [l.key, l.format, l.schemaId, (l.value as StockLevel).version])).toEqual([
      [sku, 'avro', codecs.stockLevel.schemaId, 1],
      [sku, 'avro', codecs.stockLevel.schemaId, 2],
      [sku, 'avro', codecs.stockLevel.schemaId, 3],
    ]);
    expect(lines.map((l) => l.value)).toEqual(produced);
    expect(lines[0]!.headers).toEqual({ trace: 'inspect-test' });
    expect(new Set(lines.map((l) => l.partition)).size).toBe(1);

    const first = inspect([TOPICS.stockLevels, '--from-beginning', '--limit', '3', '--json']);
    expect(first.code).toBe(0);
    const firstLines = jsonLines(first.stdout);
    expect(firstLines).toHaveLength(3);
    for (const l of firstLines) {
      expect(l).toMatchObject({ topic: TOPICS.stockLevels, format: 'avro' });
      expect(l.value).toMatchObject({ sku: l.key, version: expect.any(Number), locations: expect.any(Array) });
    }

    const human = inspect([TOPICS.stockLevels, '--key', sku, '--limit', '1']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^stock\\.levels/\\d+@\\d+  \\S+Z  key ${sku}  \\(avro, schema id \\d+\\)$`, 'm'));
    expect(human.stdout).toContain('"deleted": true');
  });

  it('follows a topic from its end, showing JSON and text values with their headers', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, privateTopic, '--limit', '2', '--json'], { cwd: PROJECT_ROOT, env: process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const reading = new Promise<void>((resolve) => child.stderr.on('data', (d: Buffer) => ((stderr += d.toString()), stderr.includes('waiting for new messages') && resolve())));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await reading; // the topic is empty: nothing in the backlog, it now waits
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: privateTopic, messages: [{ key: 'k1', value: '{"hello":"world"}', headers: { eventType: 'Greeting' } }] });
    await producer.send({ topic: privateTopic, messages: [{ key: 'k2', value: 'plain text' }] });
    await producer.disconnect();
    expect(await exited).toBe(0);
    const lines = jsonLines(stdout);
    expect(lines.map((l) => [l.key, l.format, l.value, l.headers])).toEqual([
      ['k1', 'json', { hello: 'world' }, { eventType: 'Greeting' }],
      ['k2', 'text', 'plain text', {}],
    ]);
  });

  it('lag shows a group per partition and in the list of groups', async () => {
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: privateTopic, messages: Array.from({ length: 5 }, (_, i) => ({ value: `m${i}`, partition: 0 })) });
    await producer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    const [p0] = (await admin.fetchTopicOffsets(privateTopic)).filter((p) => p.partition === 0);
    await admin.setOffsets({ groupId: group, topic: privateTopic, partitions: [{ partition: 0, offset: String(Number(p0!.high) - 3) }] });
    await admin.disconnect();

    const one = inspect(['lag', group, '--json']);
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ group, lag: 3, partitions: [{ topic: privateTopic, partition: 0, end: Number(p0!.high), lag: 3 }] });
    const all = inspect(['lag', '--json']);
    expect(all.code).toBe(0);
    expect((JSON.parse(all.stdout) as Array<{ group: string; lag: number; topics: string[] }>).find((g) => g.group === group)).toMatchObject({ lag: 3, topics: [privateTopic] });
  });

  it('connectors shows both Debezium connectors RUNNING', () => {
    const res = inspect(['connectors', '--json']);
    expect(res.code).toBe(0);
    const list = JSON.parse(res.stdout) as Array<{ name: string; state: string; tasks: Array<{ state: string }>; running: boolean }>;
    for (const name of ['invsync-stock-cdc', 'invsync-outbox']) {
      expect(list.find((c) => c.name === name)).toMatchObject({ state: 'RUNNING', running: true, tasks: [{ state: 'RUNNING' }] });
    }
    expect(inspect(['connectors']).stdout).toMatch(/^invsync-stock-cdc\s+source\s+RUNNING\s+0:RUNNING/m);
  });

  it('errors: unknown topic or group and unreachable services exit 1 with a message; bad usage exits 2', () => {
    const topic = inspect(['no.such.topic', '--limit', '1']);
    expect(topic.code).toBe(1);
    expect(topic.stderr).toContain('error: topic "no.such.topic" does not exist (npm run inspect -- topics lists them)');

    const missingGroup = inspect(['lag', unique('nobody')]);
    expect(missingGroup.code).toBe(1);
    expect(missingGroup.stderr).toMatch(/error: no consumer group/);

    const kafkaDown = inspect(['topics'], { KAFKA_BROKERS: '127.0.0.1:1' });
    expect(kafkaDown.code).toBe(1);
    expect(kafkaDown.stderr).toMatch(/^error: Kafka is not reachable at 127\.0\.0\.1:1 .*npm run stack -- status$/m);
    const connectDown = inspect(['connectors'], { CONNECT_URL: 'http://127.0.0.1:1' });
    expect(connectDown.code).toBe(1);
    expect(connectDown.stderr).toMatch(/^error: Kafka Connect is not reachable at http:\/\/127\.0\.0\.1:1/m);

    for (const args of [[], ['stock.levels', '--limit', 'lots'], ['topics', '--frobnicate'], ['connectors', '--key', 'x'], ['tail']]) {
      const res = inspect(args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr).toContain('usage: npm run inspect --');
    }
    const help = inspect(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: npm run inspect --');
  });
});
