/** Counting this run's dead letters on `inventory.dlq`: by key (it carries the run id) and by the consumer group that wrote them. */
import type { Kafka } from 'kafkajs';
import { TOPICS } from '../../lib/topics.ts';
import { watchTopic, type TopicWatcher } from '../helpers.ts';

export interface DlqCounter {
  count(): number;
  reasons(): Record<string, number>;
  /** This run's dead letters: the original value (latin1, byte-exact) and the reason. */
  records(): Array<{ value: string | null; reason: string }>;
  stop(): Promise<void>;
}

export async function countDlq(kafka: Kafka, opts: { id: string; group: string }): Promise<DlqCounter> {
  const w: TopicWatcher = await watchTopic(kafka, TOPICS.dlq, { binary: true });
  const mine = () => w.messages.filter((m) => (m.key ?? '').includes(opts.id) && m.headers['dlq.processor'] === opts.group);
  return {
    count: () => mine().length,
    reasons: () => {
      const out: Record<string, number> = {};
      for (const m of mine()) {
        const reason = (m.headers['dlq.reason'] ?? '?').split(':')[0]!;
        out[reason] = (out[reason] ?? 0) + 1;
      }
      return out;
    },
    records: () => mine().map((m) => ({ value: m.value, reason: m.headers['dlq.reason'] ?? '' })),
    stop: () => w.stop(),
  };
}
