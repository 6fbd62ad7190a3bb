import type { KafkaMessage, Message } from 'kafkajs';
import { pino } from 'pino';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ConfigError, InternalError, InvalidDataError, InvalidMessageError, SchemaError, TransientError } from './errors.ts';
import { applyWithSplit, consumerLag, DEFAULT_STAGE_FETCH, DeadLetterBox, stageFetchOptions, isDataError, PoisonMessageError, poisonOf, producerStateLost, runBatch, type BatchPayload, type StageWork } from './kafka-stage.ts';

const msg = (offset: number, value: string): KafkaMessage => ({ key: Buffer.from(`k${offset}`), value: Buffer.from(value), offset: String(offset), timestamp: '0', attributes: 0, headers: {} });
const silent = pino({ level: 'silent' });

describe('isDataError', () => {
  it('blames the message only for what it carries: undecodable, off-schema or refused as data', () => {
    expect(isDataError(new InvalidMessageError('bad'))).toBe(true);
    expect(isDataError(new SchemaError('not Avro'))).toBe(true);
    expect(isDataError(new InvalidDataError('check violation', { sqlState: '23514' }))).toBe(true);
    // Not retriable, but not the message's fault either: retried (and seen), never dead-lettered.
    expect(isDataError(new ConfigError('x', { variable: 'X' }))).toBe(false);
    expect(isDataError(new InternalError('a bug'))).toBe(false);
    expect(isDataError(new TransientError('registry down'))).toBe(false);
    // Errors of unknown origin (a dropped connection, a bug) are retried, never dead-lettered.
    expect(isDataError(new Error('ERR user_script:1: boom'))).toBe(false);
    expect(isDataError(Object.assign(new Error('x'), { code: '23514' }))).toBe(false);
  });
});

describe('applyWithSplit', () => {
  const items = (...values: string[]) => values.map((v, i) => ({ message: msg(i, v), item: v }));
  /** Applies strings; 'poison' is refused as data, 'down' as infrastructure. */
  const fake = (calls: string[][]) => async (xs: string[]) => {
    calls.push(xs);
    if (xs.includes('down')) throw new Error('connection closed');
    if (xs.includes('poison')) throw new InvalidMessageError('refused');
    return xs.map((x) => x.toUpperCase());
  };

  it('applies a clean chunk in one call', async () => {
    const calls: string[][] = [];
    const out = await applyWithSplit(items('a', 'b'), fake(calls), () => expect.unreachable());
    expect(out.map((o) => [o.message.offset, o.result])).toEqual([
      ['0', 'A'],
      ['1', 'B'],
    ]);
    expect(calls).toEqual([['a', 'b']]);
  });

  it('on a data error applies the items one by one and poisons only the offender', async () => {
    const calls: string[][] = [];
    const poisoned: string[] = [];
    let splits = 0;
    const out = await applyWithSplit(items('a', 'poison', 'c'), fake(calls), (d) => poisoned.push(d.message.offset), () => splits++);
    expect(out.map((o) => o.result)).toEqual(['A', 'C']);
    expect(poisoned).toEqual(['1']);
    expect(splits).toBe(1);
    expect(calls).toEqual([['a', 'poison', 'c'], ['a'], ['poison'], ['c']]);
  });

  it('poisons a single item without applying it twice', async () => {
    const calls: string[][] = [];
    const poisoned: unknown[] = [];
    expect(await applyWithSplit(items('poison'), fake(calls), (_, err) => poisoned.push(err))).toEqual([]);
    expect(calls).toHaveLength(1);
    expect(poisoned[0]).toBeInstanceOf(InvalidMessageError);
  });

  it('throws anything that is not the data, whole batch or single item', async () => {
    await expect(applyWithSplit(items('a', 'down'), fake([]), () => undefined)).rejects.toThrow('connection closed');
    const flaky = async (xs: string[]) => {
      if (xs.length > 1) throw new InvalidMessageError('refused');
      throw new TransientError('went away');
    };
    await expect(applyWithSplit(items('a', 'b'), flaky, () => undefined)).rejects.toThrow('went away');
  });
});

describe('stageFetchOptions', () => {
  it('answers at the first byte and polls an idle topic twice a second unless the stage gathers', () => {
    expect(stageFetchOptions()).toEqual({ minBytes: 1, maxWaitTimeInMs: 500 });
    expect(DEFAULT_STAGE_FETCH.minBytes).toBe(1);
    expect(stageFetchOptions({ minBytes: 65_536, maxWaitTimeInMs: 250 })).toEqual({ minBytes: 65_536, maxWaitTimeInMs: 250 });
    expect(stageFetchOptions({ minBytes: 1 })).toEqual({ minBytes: 1, maxWaitTimeInMs: 500 });
  });
});

describe('poisonOf and DeadLetterBox', () => {
  it('uses the phase code unless the error names its own', () => {
    expect(poisonOf(msg(1, 'x'), new SchemaError('not Avro'), 'undecodable', { tags: { kind: 'PICK' } })).toMatchObject({ code: 'undecodable', detail: 'not Avro', tags: { kind: 'PICK' } });
    const own = poisonOf(msg(1, 'x'), new PoisonMessageError('key_mismatch', 'key is not the SKU', { adjustmentId: 'a1' }), 'undecodable');
    expect(own).toMatchObject({ code: 'key_mismatch', detail: 'key is not the SKU', adjustmentId: 'a1' });
  });

  it('hands out each dead letter once, in source-offset order, in the DLQ format', () => {
    const box = new DeadLetterBox({ topic: 't', partition: 4, groupId: 'g' });
    box.add({ code: 'late', detail: 'd', message: msg(9, 'x') });
    box.add({ code: 'early', detail: 'd', message: msg(3, 'y') });
    const first = box.take();
    expect(first.map((m) => [m.headers?.['dlq.source.offset'], m.headers?.['dlq.reason'], m.headers?.['dlq.source.partition']])).toEqual([
      ['3', 'early: d', '4'],
      ['9', 'late: d', '4'],
    ]);
    expect(box.take()).toEqual([]);
    box.add({ code: 'more', detail: 'd', message: msg(5, 'z') });
    expect(box.take().map((m) => m.headers?.['dlq.source.offset'])).toEqual(['5']);
    expect(box.all).toHaveLength(3);
  });

  it('measures lag from the high watermark', () => {
    expect(consumerLag('10', '9')).toBe(0);
    expect(consumerLag('10', '4')).toBe(5);
    expect(consumerLag('0', '4')).toBe(0);
  });
});

describe('runBatch', () => {
  function harness(messages: KafkaMessage[], opts: { running?: boolean; stale?: boolean } = {}) {
    const events: string[] = [];
    const sent: Array<{ topic: string; messages: Message[] }> = [];
    const registry = new Registry();
    const metrics = {
      dlq: new Counter({ name: 'dlq', help: 'h', labelNames: ['reason'] as const, registers: [registry] }),
      batchApply: new Histogram({ name: 'batch', help: 'h', registers: [registry] }),
      lag: new Gauge({ name: 'lag', help: 'h', labelNames: ['topic', 'partition'] as const, registers: [registry] }),
    };
    const send = async (topicMessages: Array<{ topic: string; messages: Message[] }>) => {
      for (const r of topicMessages) {
        events.push(`dlq ${r.messages.length}`);
        sent.push(r);
      }
    };
    const payload: BatchPayload = {
      batch: { topic: 'src', partition: 1, highWatermark: String(Number(messages.at(-1)?.offset ?? 0) + 3), messages },
      resolveOffset: (o) => events.push(`resolve ${o}`),
      heartbeat: async () => void events.push('heartbeat'),
      commitOffsetsIfNecessary: async () => void events.push('commit'),
      isRunning: () => opts.running ?? true,
      isStale: () => opts.stale ?? false,
    };
    const env = { groupId: 'grp', dlqTopic: 'dlq', send, log: silent, metrics };
    return { events, sent, metrics, payload, env };
  }

  /** Items are the values; 'tomb' has nothing to apply, 'garbage' does not decode, 'poison' fails to apply, 'down' is infrastructure. */
  const work = (applied: string[][], extra: Partial<StageWork<string, string>> = {}): StageWork<string, string> => ({
    reasons: { decode: 'undecodable', apply: 'apply failed' },
    chunkSize: 2,
    decode: (m) => {
      const v = m.value!.toString();
      if (v === 'garbage') throw new InvalidMessageError('not a change');
      if (v === 'tomb') return null;
      return v;
    },
    apply: async (xs) => {
      applied.push(xs);
      if (xs.includes('down')) throw new Error('connection closed');
      if (xs.includes('poison')) throw new InvalidMessageError('script error');
      return xs.map((x) => `${x}!`);
    },
    ...extra,
  });

  it('dead-letters poison, applies the rest by chunks, and moves the offset only after the dead letters are sent', async () => {
    const h = harness([msg(10, 'a'), msg(11, 'garbage'), msg(12, 'tomb'), msg(13, 'poison'), msg(14, 'b'), msg(15, 'c')]);
    const applied: string[][] = [];
    let done: { applied: string[]; skipped: number; dead: string[] } | undefined;
    await runBatch(
      h.payload,
      work(applied, {
        committed: (d) => {
          done = { applied: d.applied.map((a) => a.result), skipped: d.skipped, dead: d.deadLetters.map((p) => `${p.message.offset} ${p.code}`) };
          return { applied: d.applied.length };
        },
      }),
      h.env,
    );
    expect(applied).toEqual([['a', 'poison'], ['a'], ['poison'], ['b', 'c']]);
    expect(done).toEqual({ applied: ['a!', 'b!', 'c!'], skipped: 1, dead: ['11 undecodable', '13 apply failed'] });
    expect(h.sent.map((s) => s.topic)).toEqual(['dlq']);
    expect(h.sent[0]!.messages.map((m) => [m.headers?.['dlq.reason'], m.headers?.['dlq.processor'], m.value?.toString()])).toEqual([
      ['undecodable: not a change', 'grp', 'garbage'],
      ['apply failed: script error', 'grp', 'poison'],
    ]);
    expect(h.events).toEqual(['heartbeat', 'heartbeat', 'dlq 2', 'resolve 15', 'commit', 'heartbeat']);
    expect((await h.metrics.dlq.get()).values.map((v) => [v.labels.reason, v.value])).toEqual([
      ['undecodable', 1],
      ['apply failed', 1],
    ]);
    expect((await h.metrics.lag.get()).values[0]).toMatchObject({ labels: { topic: 'src', partition: '1' }, value: 2 });
  });

  it('fails the batch on an infrastructure error: nothing dead-lettered, no offset moved (kafkajs retries it)', async () => {
    const h = harness([msg(1, 'a'), msg(2, 'garbage'), msg(3, 'down')]);
    await expect(runBatch(h.payload, work([]), h.env)).rejects.toThrow('connection closed');
    expect(h.sent).toEqual([]);
    expect(h.events.filter((e) => e.startsWith('resolve') || e === 'commit')).toEqual([]);
  });

  it('fails the batch when decoding meets a retriable error (a registry outage is not the message’s fault)', async () => {
    const h = harness([msg(1, 'a')]);
    const w = work([], { decode: () => Promise.reject(new TransientError('registry down')) });
    await expect(runBatch(h.payload, w, h.env)).rejects.toThrow('registry down');
    expect(h.events).toEqual([]);
  });

  it('lets a stage send its dead letters with its own output, and sends only what it left', async () => {
    const h = harness([msg(1, 'garbage'), msg(2, 'a')]);
    let own: Message[] = [];
    const w = work([], {
      complete: async (d, ctx) => {
        own = ctx.takeDeadLetters();
        ctx.deadLetter({ code: 'effect not encodable', detail: 'too big', message: d.applied[0]!.message, tags: { kind: 'X' } });
      },
    });
    await runBatch(h.payload, w, h.env);
    expect(own.map((m) => m.headers?.['dlq.reason'])).toEqual(['undecodable: not a change']);
    expect(h.sent.flatMap((s) => s.messages.map((m) => m.headers?.['dlq.reason']))).toEqual(['effect not encodable: too big']);
  });

  it('does not start a batch of a stopping consumer or a moved partition, nor an empty one', async () => {
    for (const h of [harness([msg(1, 'a')], { running: false }), harness([msg(1, 'a')], { stale: true }), harness([])]) {
      const applied: string[][] = [];
      await runBatch(h.payload, work(applied), h.env);
      expect([applied, h.events]).toEqual([[], []]);
    }
  });
});

describe('producerStateLost', () => {
  it('recognises a refused sequence or epoch in the error or a cause below it', () => {
    const protocol = Object.assign(new Error('The broker received an out of order sequence number'), { type: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
    const wrapped = Object.assign(new Error('wrapped'), { cause: protocol });
    expect(producerStateLost(protocol)).toBe(true);
    expect(producerStateLost(wrapped)).toBe(true);
    expect(producerStateLost(Object.assign(new Error('x'), { type: 'INVALID_PRODUCER_EPOCH' }))).toBe(true);
    expect(producerStateLost(Object.assign(new Error('y'), { originalError: new Error('This exception is raised by the broker if it could not locate the producer metadata associated with the producerId (UNKNOWN_PRODUCER_ID)') }))).toBe(true);
  });

  it('leaves every other failure to the usual handling', () => {
    expect(producerStateLost(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:29092'))).toBe(false);
    expect(producerStateLost(Object.assign(new Error('There is no leader for this topic-partition'), { type: 'LEADER_NOT_AVAILABLE' }))).toBe(false);
    expect(producerStateLost(undefined)).toBe(false);
    expect(producerStateLost('out of order')).toBe(false);
  });
});
