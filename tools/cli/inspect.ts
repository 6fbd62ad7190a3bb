/**
 * `npm run inspect -- <command>`: look at Kafka without Kafka UI (docs/inspect-and-simulate.md).
 *
 *   topics                 the topics, their partitions, message counts and cleanup policy
 *   lag [group]            consumer groups and their lag; with a group, per partition
 *   connectors             Kafka Connect connectors and their tasks (CONNECT_URL)
 *   <topic> [options]      print a topic's messages: Avro decoded through the registry (magic
 *                          byte + schema id), JSON and text as they are, headers shown
 *
 * Read-only: it never commits offsets (its throw-away consumer group is deleted on exit) and
 * never creates topics. Exit codes: 0 done, 1 error (unknown topic or group, a service not
 * reachable, a connector not RUNNING), 2 usage.
 */
import { randomBytes } from 'node:crypto';
import { Partitioners, type Admin, type Kafka, type KafkaMessage, type PartitionMetadata } from 'kafkajs';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { createSchemaRegistry, decodeAvro } from '../../lib/avro-registry.ts';
import { loadConfigOrExit, type Config } from '../../lib/config.ts';
import { errorMessage, SchemaError } from '../../lib/errors.ts';
import { createKafka } from '../../lib/kafka.ts';
import { redactUrl } from '../../lib/redact.ts';
import { explain } from './explain.ts';

const USAGE = `usage: npm run inspect -- <command> [options]
  topics [--all] [--json]          topics with partitions, messages and cleanup policy (--all: internal ones too)
  lag [group] [--json]             consumer groups with their lag; with a group: per topic and partition
  connectors [--json]              Kafka Connect connectors and their tasks (exit 1 when one is not RUNNING)
  <topic> [options]                print a topic's messages (Avro decoded through the registry; headers shown)
  tail <topic> [options]           the same, for a topic named like a command
  explain <sku> [--location L] [--json]
                                   how the SKU's rows reached their figures: the movement ledger (Postgres),
                                   exit 1 when the ledger does not add up to a row
      --from-beginning             start at the oldest retained message (default: only new messages)
      --limit N                    stop after N messages; without --from-beginning: the last N already there
      --key K                      only messages with key K (reads only K's partition)
      --json                       one JSON object per message and line
exit codes: 0 ok, 1 error (unknown topic or group, service unreachable, connector not running), 2 usage`;

function usage(message: string): never {
  process.stderr.write(`error: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

/** An error that ends the command with exit code 1 after cleaning up. */
class CliError extends Error {}

// ------------------------------------------------------------------------------------ arguments

interface Options {
  json: boolean;
  all: boolean;
  fromBeginning: boolean;
  limit: number | undefined;
  key: string | undefined;
  location: string | undefined;
  positional: string[];
}

function parseArgs(argv: string[]): Options {
  const o: Options = { json: false, all: false, fromBeginning: false, limit: undefined, key: undefined, location: undefined, positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case '--json':
        o.json = true;
        break;
      case '--all':
        o.all = true;
        break;
      case '--from-beginning':
        o.fromBeginning = true;
        break;
      case '--limit': {
        const v = argv[++i];
        const n = Number(v);
        if (v === undefined || !Number.isInteger(n) || n < 1 || n > 1_000_000) usage(`--limit needs a whole number from 1 to 1000000 (got ${v === undefined ? 'nothing' : JSON.stringify(v)})`);
        o.limit = n;
        break;
      }
      case '--key': {
        const v = argv[++i];
        if (v === undefined) usage('--key needs a value');
        o.key = v;
        break;
      }
      case '--location': {
        const v = argv[++i];
        if (v === undefined) usage('--location needs a value');
        o.location = v;
        break;
      }
      default:
        if (a.startsWith('--')) usage(`unknown option ${a}`);
        o.positional.push(a);
    }
  }
  return o;
}

function only(o: Options, command: string, allowed: Array<'json' | 'all' | 'tail'>, maxPositional: number): void {
  if (o.positional.length > maxPositional) usage(`unexpected argument ${JSON.stringify(o.positional[maxPositional])} for ${command}`);
  if (!allowed.includes('all') && o.all) usage(`--all does not apply to ${command}`);
  if (o.location !== undefined) usage(`--location applies to explain, not to ${command}`);
  if (!allowed.includes('tail') && (o.fromBeginning || o.limit !== undefined || o.key !== undefined)) {
    usage(`--from-beginning, --limit and --key apply to reading a topic, not to ${command}`);
  }
}

// ------------------------------------------------------------------------------------ clients

function kafkaFor(config: Config): Kafka {
  // A short retry budget: a CLI should say "not reachable" in seconds, not after a minute.
  return createKafka({
    connection: config.kafka,
    clientId: 'invsync-inspect',
    overrides: { connectionTimeout: 2000, retry: { initialRetryTime: 200, retries: 2 } },
  });
}

async function connectAdmin(kafka: Kafka, config: Config): Promise<Admin> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.describeCluster();
  } catch (err) {
    fail(`Kafka is not reachable at ${config.kafka.brokers.join(',')} (${errorMessage(err)}): is the stack up? npm run stack -- status`);
  }
  return admin;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd()).join('\n') + '\n';
}

// ------------------------------------------------------------------------------------ topics

async function topics(config: Config, o: Options): Promise<number> {
  only(o, 'topics', ['json', 'all'], 0);
  const admin = await connectAdmin(kafkaFor(config), config);
  try {
    const names = (await admin.listTopics()).filter((t) => o.all || !t.startsWith('__')).sort();
    const meta = names.length ? (await admin.fetchTopicMetadata({ topics: names })).topics : [];
    const configs = names.length
      ? await admin.describeConfigs({ includeSynonyms: false, resources: names.map((name) => ({ type: 2, name, configNames: ['cleanup.policy'] })) })
      : { resources: [] };
    const policy = new Map(configs.resources.map((r) => [r.resourceName, r.configEntries.find((e) => e.configName === 'cleanup.policy')?.configValue ?? '?']));
    const rows = await Promise.all(
      names.map(async (topic) => {
        const offsets = await admin.fetchTopicOffsets(topic);
        const messages = offsets.reduce((sum, p) => sum + (Number(p.high) - Number(p.low)), 0);
        return { topic, partitions: meta.find((m) => m.name === topic)?.partitions.length ?? offsets.length, messages, cleanupPolicy: policy.get(topic) ?? '?' };
      }),
    );
    if (o.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
    else {
      process.stdout.write(table([['TOPIC', 'PARTITIONS', 'MESSAGES', 'CLEANUP'], ...rows.map((r) => [r.topic, String(r.partitions), String(r.messages), r.cleanupPolicy])]));
      process.stderr.write(`${rows.length} topic(s)${o.all ? '' : ' (internal __* topics hidden; --all shows them)'}; MESSAGES counts retained offsets\n`);
    }
    return 0;
  } finally {
    await admin.disconnect();
  }
}

// ------------------------------------------------------------------------------------ lag

interface PartitionLag {
  topic: string;
  partition: number;
  committed: number | null;
  end: number;
  lag: number | null;
}

async function groupLag(admin: Admin, groupId: string, ends: Map<string, Promise<Map<number, number>>>): Promise<PartitionLag[]> {
  const committed = await admin.fetchOffsets({ groupId });
  const out: PartitionLag[] = [];
  for (const t of committed) {
    let endsOf = ends.get(t.topic);
    if (!endsOf) {
      endsOf = admin.fetchTopicOffsets(t.topic).then(
        (list) => new Map(list.map((p) => [p.partition, Number(p.high)])),
        () => new Map<number, number>(), // the topic was deleted since
      );
      ends.set(t.topic, endsOf);
    }
    const highs = await endsOf;
    for (const p of t.partitions) {
      const c = Number(p.offset);
      const end = highs.get(p.partition) ?? 0;
      out.push({ topic: t.topic, partition: p.partition, committed: c >= 0 ? c : null, end, lag: c >= 0 ? Math.max(0, end - c) : null });
    }
  }
  return out.filter((p) => p.committed !== null).sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
}

async function lag(config: Config, o: Options): Promise<number> {
  only(o, 'lag', ['json'], 1);
  const admin = await connectAdmin(kafkaFor(config), config);
  const ends = new Map<string, Promise<Map<number, number>>>();
  try {
    const wanted = o.positional[0];
    if (wanted !== undefined) {
      const [desc] = (await admin.describeGroups([wanted])).groups;
      const partitions = await groupLag(admin, wanted, ends);
      if ((!desc || desc.state === 'Dead') && partitions.length === 0) fail(`no consumer group ${JSON.stringify(wanted)} (npm run inspect -- lag lists them)`);
      const total = partitions.reduce((s, p) => s + (p.lag ?? 0), 0);
      const result = { group: wanted, state: desc?.state ?? 'unknown', members: desc?.members.length ?? 0, lag: total, partitions };
      if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else {
        process.stdout.write(`group ${wanted}: ${result.state}, ${result.members} member(s), lag ${total}\n`);
        if (partitions.length) {
          process.stdout.write(table([['TOPIC', 'PARTITION', 'COMMITTED', 'END', 'LAG'], ...partitions.map((p) => [p.topic, String(p.partition), String(p.committed), String(p.end), String(p.lag)])]));
        } else process.stdout.write('no committed offsets\n');
      }
      return 0;
    }
    const { groups } = await admin.listGroups();
    const ids = groups.map((g) => g.groupId).sort();
    const described = ids.length ? (await admin.describeGroups(ids)).groups : [];
    const rows = await Promise.all(
      ids.map(async (id) => {
        const d = described.find((g) => g.groupId === id);
        const parts = await groupLag(admin, id, ends);
        return {
          group: id,
          type: groups.find((g) => g.groupId === id)?.protocolType || '-',
          state: d?.state ?? 'unknown',
          members: d?.members.length ?? 0,
          topics: [...new Set(parts.map((p) => p.topic))],
          lag: parts.reduce((sum, p) => sum + (p.lag ?? 0), 0),
        };
      }),
    );
    if (o.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
    else if (rows.length === 0) process.stdout.write('no consumer groups\n');
    else process.stdout.write(table([['GROUP', 'TYPE', 'STATE', 'MEMBERS', 'LAG', 'TOPICS'], ...rows.map((r) => [r.group, r.type, r.state, String(r.members), String(r.lag), r.topics.join(',') || '-'])]));
    return 0;
  } finally {
    await admin.disconnect();
  }
}

// ------------------------------------------------------------------------------------ connectors

interface ConnectorStatus {
  name: string;
  connector: { state: string; worker_id: string; trace?: string };
  tasks: Array<{ id: number; state: string; worker_id: string; trace?: string }>;
  type?: string;
}

async function connectors(config: Config, o: Options): Promise<number> {
  only(o, 'connectors', ['json'], 0);
  const url = `${config.connect.url}/connectors?expand=status`;
  let body: Record<string, { status: ConnectorStatus }>;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000), headers: { accept: 'application/json' } });
    if (!res.ok) fail(`Kafka Connect at ${redactUrl(config.connect.url)} answered HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
    body = (await res.json()) as Record<string, { status: ConnectorStatus }>;
  } catch (err) {
    fail(`Kafka Connect is not reachable at ${redactUrl(config.connect.url)} (${errorMessage((err as { cause?: unknown }).cause ?? err)}): is the stack up? npm run stack -- status`);
  }
  const list = Object.values(body)
    .map((c) => c.status)
    .sort((a, b) => a.name.localeCompare(b.name));
  const healthy = (c: ConnectorStatus) => c.connector.state === 'RUNNING' && c.tasks.length > 0 && c.tasks.every((t) => t.state === 'RUNNING');
  const broken = list.filter((c) => !healthy(c));
  if (o.json) {
    process.stdout.write(`${JSON.stringify(list.map((c) => ({ name: c.name, type: c.type ?? null, state: c.connector.state, worker: c.connector.worker_id, tasks: c.tasks.map((t) => ({ id: t.id, state: t.state, worker: t.worker_id, ...(t.trace ? { trace: t.trace.split('\n')[0] } : {}) })), running: healthy(c) })))}\n`);
  } else if (list.length === 0) process.stdout.write(`no connectors on ${redactUrl(config.connect.url)}\n`);
  else {
    process.stdout.write(table([['CONNECTOR', 'TYPE', 'STATE', 'TASKS', 'WORKER'], ...list.map((c) => [c.name, c.type ?? '-', c.connector.state, c.tasks.map((t) => `${t.id}:${t.state}`).join(' ') || '(none)', c.connector.worker_id])]));
    for (const c of list) {
      for (const t of [{ id: 'connector', trace: c.connector.trace }, ...c.tasks.map((t) => ({ id: `task ${t.id}`, trace: t.trace }))]) {
        if (t.trace) process.stdout.write(`  ${c.name} ${t.id}: ${t.trace.split('\n')[0]}\n`);
      }
    }
  }
  if (broken.length) {
    process.stderr.write(`error: ${broken.length} connector(s) not RUNNING: ${broken.map((c) => c.name).join(', ')}\n`);
    return 1;
  }
  return 0;
}

// ------------------------------------------------------------------------------------ reading a topic

type Decoded =
  | { format: 'avro'; schemaId: number; value: unknown }
  | { format: 'json'; value: unknown }
  | { format: 'text'; value: string }
  | { format: 'binary'; value: string; note?: string }
  | { format: 'null'; value: null };

const utf8 = new TextDecoder('utf-8', { fatal: true });

async function decodeBytes(buf: Buffer | null, registry: SchemaRegistry, config: Config): Promise<Decoded> {
  if (buf === null) return { format: 'null', value: null };
  if (buf.length >= 5 && buf[0] === 0) {
    const schemaId = buf.readInt32BE(1);
    try {
      return { format: 'avro', schemaId, value: await decodeAvro(registry, buf) };
    } catch (err) {
      if (!(err instanceof SchemaError)) throw new CliError(`schema registry unreachable at ${redactUrl(config.registry.url)} while decoding schema id ${schemaId}: ${errorMessage(err)}`);
      return { format: 'binary', value: buf.toString('base64'), note: `looks like Avro (schema id ${schemaId}) but does not decode: ${err.message}` };
    }
  }
  let text: string;
  try {
    text = utf8.decode(buf);
  } catch {
    return { format: 'binary', value: buf.toString('base64') };
  }
  try {
    return { format: 'json', value: JSON.parse(text) as unknown };
  } catch {
    return { format: 'text', value: text };
  }
}

/** JSON for display: bytes as base64, bigints as strings. */
function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(
    value,
    function (this: Record<string, unknown>, k: string, v: unknown) {
      const original = this[k];
      if (Buffer.isBuffer(original)) return original.toString('base64');
      return typeof v === 'bigint' ? v.toString() : v;
    },
    indent,
  );
}

interface Printed {
  partition: number;
  offset: string;
  timestamp: number;
  message: KafkaMessage;
}

function keyText(d: Decoded): string | null {
  if (d.format === 'null') return null;
  if (d.format === 'text' || d.format === 'binary') return d.value;
  return toJson(d.value);
}

async function render(topic: string, p: Printed, o: Options, registry: SchemaRegistry, config: Config): Promise<string> {
  const key = await decodeBytes(p.message.key, registry, config);
  const value = await decodeBytes(p.message.value, registry, config);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.message.headers ?? {})) {
    if (v === undefined) continue;
    const one = Array.isArray(v) ? v[v.length - 1] : v;
    headers[k] = one === undefined ? '' : one.toString();
  }
  const ts = new Date(p.timestamp).toISOString();
  if (o.json) {
    return toJson({
      topic,
      partition: p.partition,
      offset: p.offset,
      timestamp: ts,
      key: keyText(key),
      headers,
      format: value.format,
      ...(value.format === 'avro' ? { schemaId: value.schemaId } : {}),
      ...(value.format === 'binary' && value.note ? { note: value.note } : {}),
      value: value.value,
    });
  }
  const what = value.format === 'avro' ? `avro, schema id ${value.schemaId}` : value.format;
  const lines = [`${topic}/${p.partition}@${p.offset}  ${ts}  key ${keyText(key) ?? '(null)'}  (${what})`];
  if (Object.keys(headers).length) lines.push(`  headers: ${Object.entries(headers).map(([k, v]) => `${k}=${v}`).join('  ')}`);
  if (value.format === 'avro' || value.format === 'json') lines.push(toJson(value.value, 2).replace(/^/gm, '  '));
  else if (value.format === 'null') lines.push('  (null value: tombstone)');
  else if (value.format === 'binary') lines.push(`  ${value.note ? `${value.note}; ` : ''}base64 ${value.value}`);
  else lines.push(`  ${value.value}`);
  return lines.join('\n');
}

/** The partition the default (murmur2, Java-compatible) partitioner picks for a key. */
function partitionOfKey(topic: string, key: string, partitions: number[]): number {
  const metadata = partitions.map((partitionId) => ({ partitionId, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] })) as PartitionMetadata[];
  return Partitioners.DefaultPartitioner()({ topic, partitionMetadata: metadata, message: { key, value: null } });
}

async function readTopic(config: Config, topic: string, o: Options): Promise<number> {
  if (o.all) usage('--all applies to topics, not to reading a topic');
  if (o.positional.length > 0) usage(`unexpected argument ${JSON.stringify(o.positional[0])}`);
  const kafka = kafkaFor(config);
  const admin = await connectAdmin(kafka, config);
  if (!(await admin.listTopics()).includes(topic)) {
    await admin.disconnect();
    fail(`topic ${JSON.stringify(topic)} does not exist (npm run inspect -- topics lists them)`);
  }
  const offsets = await admin.fetchTopicOffsets(topic);
  const all = offsets.map((p) => p.partition).sort((a, b) => a - b);
  const partitions = o.key === undefined ? all : [partitionOfKey(topic, o.key, all)];
  // Where each partition starts: oldest, or N before the end (the whole partition with --key), or the end.
  const lastN = !o.fromBeginning && o.limit !== undefined;
  const start = new Map<number, number>();
  const end = new Map<number, number>();
  for (const p of offsets) {
    if (!partitions.includes(p.partition)) continue;
    const low = Number(p.low);
    const high = Number(p.high);
    end.set(p.partition, high);
    start.set(p.partition, o.fromBeginning || (lastN && o.key !== undefined) ? low : lastN ? Math.max(low, high - o.limit!) : high);
  }

  const registry = createSchemaRegistry(config.registry);
  const groupId = `invsync-inspect-${randomBytes(4).toString('hex')}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200, allowAutoTopicCreation: false });
  let printed = 0;
  let stopping = false;
  const finish = async (code: number): Promise<never> => {
    if (stopping) return new Promise<never>(() => undefined);
    stopping = true;
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    process.exit(code);
  };
  process.once('SIGINT', () => void finish(0));
  process.once('SIGTERM', () => void finish(0));

  const emit = async (p: Printed): Promise<void> => {
    if (stopping) return;
    let text: string;
    try {
      text = await render(topic, p, o, registry, config);
    } catch (err) {
      process.stderr.write(`error: ${errorMessage(err)}\n`);
      void finish(1);
      return;
    }
    process.stdout.write(`${text}\n`);
    printed++;
    // Not awaited: disconnecting waits for the running batch handler, which is the caller.
    if (o.limit !== undefined && printed >= o.limit) void finish(0);
  };

  // The "last N" backlog is collected first (every partition read up to where it ended when we
  // started), then printed in time order; anything newer is printed as it arrives.
  const backlog: Printed[] = [];
  const pending = new Set(lastN ? partitions.filter((p) => start.get(p)! < end.get(p)!) : []);
  let backlogDone = !lastN;
  let idle: NodeJS.Timeout | undefined;
  const flushBacklog = async (): Promise<void> => {
    if (backlogDone) return;
    backlogDone = true;
    if (idle) clearTimeout(idle);
    backlog.sort((a, b) => a.timestamp - b.timestamp || a.partition - b.partition || Number(a.offset) - Number(b.offset));
    for (const p of backlog.slice(-o.limit!)) await emit(p);
    if (!stopping) process.stderr.write(`(${printed} of ${o.limit} shown; waiting for new messages, Ctrl-C to stop)\n`);
  };
  // A partition whose last offsets are transaction markers never delivers its end offset: stop
  // waiting for it after a quiet second.
  const touch = () => {
    if (backlogDone) return;
    if (idle) clearTimeout(idle);
    idle = setTimeout(() => void flushBacklog(), 1500);
  };

  const what = o.fromBeginning
    ? 'from the beginning'
    : lastN
      ? `the last ${o.limit} message(s)${o.key !== undefined ? ` with key ${JSON.stringify(o.key)}` : ''}`
      : 'new messages';
  process.stderr.write(
    `reading ${topic} (${o.key !== undefined ? `partition ${partitions[0]} of ${all.length}, key ${JSON.stringify(o.key)}` : `${all.length} partition(s)`}): ${what}${o.limit !== undefined && !lastN ? `, up to ${o.limit}` : ''}; Ctrl-C to stop\n`,
  );

  consumer.on(consumer.events.GROUP_JOIN, () => {
    if (pending.size === 0) void flushBacklog();
    else touch();
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, heartbeat }) => {
        const partition = batch.partition;
        const from = start.get(partition);
        if (from === undefined) return; // not a partition we read
        for (const message of batch.messages) {
          if (stopping) return;
          const offset = Number(message.offset);
          if (offset < from) continue; // fetched before the seek took effect
          if (o.key !== undefined && message.key?.toString('utf8') !== o.key) {
            if (!backlogDone && offset >= end.get(partition)! - 1) pending.delete(partition);
            continue;
          }
          const p: Printed = { partition, offset: message.offset, timestamp: Number(message.timestamp), message };
          if (!backlogDone && offset < end.get(partition)!) {
            backlog.push(p);
            touch();
            if (offset >= end.get(partition)! - 1) pending.delete(partition);
          } else {
            if (!backlogDone) await flushBacklog();
            await emit(p);
          }
        }
        if (!backlogDone) {
          if (batch.messages.length && Number(batch.lastOffset()) >= end.get(partition)! - 1) pending.delete(partition);
          if (pending.size === 0) await flushBacklog();
        }
        await heartbeat();
      },
    });
    for (const [partition, offset] of start) consumer.seek({ topic, partition, offset: String(offset) });
    const others = all.filter((p) => !start.has(p));
    if (others.length) consumer.pause([{ topic, partitions: others }]);
  } catch (err) {
    process.stderr.write(`error: cannot read ${topic}: ${errorMessage(err)}\n`);
    return finish(1);
  }
  return new Promise<number>(() => undefined); // runs until --limit or Ctrl-C
}

// ------------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.length === 0) usage('a command or a topic is required');
  if (argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const o = parseArgs(argv);
  const [command, ...rest] = o.positional;
  if (command === undefined) usage('a command or a topic is required');
  o.positional = rest;
  const config = loadConfigOrExit();
  let code: number;
  switch (command) {
    case 'topics':
      code = await topics(config, o);
      break;
    case 'lag':
      code = await lag(config, o);
      break;
    case 'connectors':
      code = await connectors(config, o);
      break;
    case 'explain': {
      const [sku, ...more] = rest;
      if (sku === undefined) usage('explain needs a SKU');
      if (more.length > 0) usage(`unexpected argument ${JSON.stringify(more[0])} for explain`);
      code = await explain(config, sku, o.location, o.json);
      break;
    }
    case 'tail': {
      const [topic, ...more] = rest;
      if (topic === undefined) usage('tail needs a topic');
      o.positional = more;
      code = await readTopic(config, topic, o);
      break;
    }
    default:
      code = await readTopic(config, command, o);
  }
  process.exit(code);
}

try {
  await main();
} catch (err) {
  fail(errorMessage(err));
}
