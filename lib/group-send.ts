/**
 * Group commit for a stage's Kafka sends.
 *
 * A stage works on its partitions in parallel (kafkajs' partitionsConsumedConcurrently), and
 * every batch ends with a send of its effects at acks=all. The stage's producer is idempotent,
 * and kafkajs serialises an idempotent producer's requests to a broker behind one lock (the
 * sequence numbers must go out in order). Six partitions' batches finishing together therefore
 * waited for six acknowledged requests one after the other: 50–160 ms of a batch's time at 400
 * changes/s was queueing for that lock (measured with the processor's batch timings, docs/
 * benchmarks.md "Group commit of the stage's sends"), and the next fetch waits for the slowest
 * batch.
 *
 * `GroupSender` sends a request at once when none is in flight; requests that arrive while one is
 * in flight wait and go out together as one request when it is done (up to `maxBytes` of keys
 * and values per request). Each caller's promise settles with the request that carried its messages: a
 * failure fails every batch in that request, and each retries (what it wrote before is written
 * again; consumers drop it by version). Messages keep their order per topic, in call order, and a
 * caller's messages are never split across requests.
 */
import type { Message } from 'kafkajs';

export interface TopicMessages {
  topic: string;
  messages: Message[];
}

interface Waiting {
  topicMessages: TopicMessages[];
  bytes: number;
  resolve(): void;
  reject(err: unknown): void;
}

/** A request of 1 MiB of keys and values at most (a broker's default max.request.size), unless one caller's messages alone are larger. */
export const DEFAULT_GROUP_MAX_BYTES = 1024 * 1024;

function sizeOf(topicMessages: TopicMessages[]): number {
  let n = 0;
  for (const t of topicMessages) for (const m of t.messages) n += (m.value?.length ?? 0) + (m.key?.length ?? 0);
  return n;
}

/** The callers' topic messages as one list: one entry per topic, messages in call order. */
export function mergeTopicMessages(groups: TopicMessages[][]): TopicMessages[] {
  const byTopic = new Map<string, Message[]>();
  for (const group of groups) {
    for (const t of group) {
      if (t.messages.length === 0) continue;
      const list = byTopic.get(t.topic);
      if (list) list.push(...t.messages);
      else byTopic.set(t.topic, [...t.messages]);
    }
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

export class GroupSender {
  private readonly waiting: Waiting[] = [];
  private running = false;
  /** Requests sent, and callers served by them (read by the tests). */
  readonly stats = { requests: 0, callers: 0 };

  constructor(
    private readonly sendRequest: (topicMessages: TopicMessages[]) => Promise<unknown>,
    private readonly maxBytes = DEFAULT_GROUP_MAX_BYTES,
  ) {}

  /** Resolves once a request carrying these messages is acknowledged. */
  send(topicMessages: TopicMessages[]): Promise<void> {
    const promise = new Promise<void>((resolve, reject) => {
      this.waiting.push({ topicMessages, bytes: sizeOf(topicMessages), resolve, reject });
    });
    if (!this.running) void this.drain();
    return promise;
  }

  private take(): Waiting[] {
    let bytes = 0;
    let n = 0;
    while (n < this.waiting.length && (n === 0 || bytes + this.waiting[n]!.bytes <= this.maxBytes)) bytes += this.waiting[n++]!.bytes;
    return this.waiting.splice(0, n);
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.waiting.length > 0) {
        const group = this.take();
        const merged = mergeTopicMessages(group.map((w) => w.topicMessages));
        this.stats.requests++;
        this.stats.callers += group.length;
        try {
          if (merged.length > 0) await this.sendRequest(merged);
          for (const w of group) w.resolve();
        } catch (err) {
          for (const w of group) w.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
