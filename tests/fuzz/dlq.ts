/** Counting this run's dead letters on `inventory.dlq`: by key (it carries the run id) and by the consumer group that wrote them. */
import type { Kafka } from 'kafkajs';
import { decodeDeadLetter, type DlqRecord } from '../../lib/contracts/dlq.ts';
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
  const mine = () =>
    w.messages.flatMap((m): DlqRecord[] => {
      const d = decodeDeadLetter(m);
      return d !== null && (m.key ?? '').includes(opts.id) && d.processor === opts.group ? [d] : [];
    });
  return {
    count: () => mine().length,
    reasons: () => {
      const out: Record<string, number> = {};
      for (const d of mine()) {
        out[d.code] = (out[d.code] ?? 0) + 1;
      }
      return out;
    },
    records: () => mine().map((d) => ({ value: typeof d.value === 'string' || d.value === null ? d.value : d.value.toString('latin1'), reason: d.reason })),
    stop: () => w.stop(),
  };
}
