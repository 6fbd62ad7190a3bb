/** Creates the platform's topics (lib/topics.ts) when missing; existing topics are left alone. */
import type { Kafka } from 'kafkajs';
import { TOPIC_SPECS, type TopicSpec } from './topics.ts';

export async function ensureTopics(kafka: Kafka, specs: TopicSpec[] = TOPIC_SPECS): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.topic));
    if (missing.length === 0) return [];
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((s) => ({
        topic: s.topic,
        numPartitions: s.partitions,
        replicationFactor: -1,
        configEntries: Object.entries(s.config).map(([name, value]) => ({ name, value })),
      })),
    });
    return missing.map((s) => s.topic);
  } finally {
    await admin.disconnect();
  }
}
