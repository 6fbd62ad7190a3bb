/**
 * Redis and Kafka clients for the stock processor under test whose calls are timed: RedisClient pipelines
 * (named by their Lua script or first command) and Kafka sendBatch. The processor code is unchanged.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Kafka, Producer, ProducerBatch } from 'kafkajs';
import type { RedisClient } from '../../../lib/redis.ts';
import { PROJECT_ROOT } from '../../../lib/config.ts';
import type { KafkaConnection } from '../../../lib/config.ts';
import { createKafka } from '../../../lib/kafka.ts';
import { createRedis } from '../../../lib/redis.ts';
import { resolveLuaIncludes } from '../../../lib/lua-include.ts';

/** The processor's Lua scripts by SHA1 of what EVALSHA carries (includes resolved), to name their pipelines. */
const LUA_DIR = path.join(PROJECT_ROOT, 'stream-processors', 'lua');
const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');
let scriptNames: Map<string, string> | undefined;
const scripts = () =>
  (scriptNames ??= new Map<string, string>(
    fs
      .readdirSync(LUA_DIR)
      .filter((f) => f.endsWith('.lua'))
      .map((f) => [sha1(resolveLuaIncludes(path.join(LUA_DIR, f))), f]),
  ));

/** What a pipeline runs: a Lua script's file name, or its first command. */
export function pipelineKind(first: { name?: string; args?: unknown[] } | undefined): string {
  const name = first?.name ?? 'empty';
  const arg0 = first?.args?.[0];
  if (name === 'evalsha' && typeof arg0 === 'string') return scripts().get(arg0) ?? 'evalsha (unknown script)';
  if (name === 'eval' && typeof arg0 === 'string') return scripts().get(sha1(arg0)) ?? 'eval (unknown script)';
  return name;
}

/** A Redis connection whose pipelines time their exec: `onExec(kind, commands, ms)` after each. */
export function timedRedis(url: string, onExec: (kind: string, commands: number, ms: number) => void): RedisClient {
  const r = createRedis(url);
  const pipeline = r.pipeline.bind(r);
  (r as unknown as { pipeline: typeof r.pipeline }).pipeline = ((...a: Parameters<typeof r.pipeline>) => {
    const p = pipeline(...a);
    const exec = p.exec.bind(p);
    p.exec = (async () => {
      const kind = pipelineKind((p as unknown as { _queue?: Array<{ name?: string; args?: unknown[] }> })._queue?.[0]);
      const commands = p.length;
      const t = performance.now();
      try {
        return await exec();
      } finally {
        onExec(kind, commands, performance.now() - t);
      }
    }) as typeof p.exec;
    return p;
  }) as typeof r.pipeline;
  return r;
}

/** A Kafka client whose producers time sendBatch: `onSend(ms)` after each. */
export function timedKafka(connection: KafkaConnection, clientId: string, onSend: (ms: number) => void): Kafka {
  const k = createKafka({ connection, clientId });
  const producer = k.producer.bind(k);
  k.producer = (cfg) => {
    const p: Producer = producer(cfg);
    const sendBatchFn = p.sendBatch.bind(p);
    p.sendBatch = async (b: ProducerBatch) => {
      const t = performance.now();
      try {
        return await sendBatchFn(b);
      } finally {
        onSend(performance.now() - t);
      }
    };
    return p;
  };
  return k;
}
