/** Creates the platform's topics (lib/topics.ts) when missing; existing topics are left alone. */
import type { ITopicConfig, Kafka } from 'kafkajs';
import type { TopicPolicy } from './config.ts';
import { TOPIC_SPECS, type TopicSpec } from './topics.ts';

/** The brokers' own defaults (`default.replication.factor`, `min.insync.replicas`). */
export const BROKER_DEFAULTS: TopicPolicy = { replicationFactor: -1, minInsyncReplicas: undefined };

/**
 * What `createTopics` is asked for: each spec's partitions and settings, replicated as the policy
 * says (KAFKA_TOPIC_REPLICATION_FACTOR; -1 is the brokers' default) and, when the policy names it,
 * with `min.insync.replicas` so an `acks=all` write (every producer here is idempotent, so acks=all)
 * is acknowledged only once that many replicas have it. A spec's own setting wins.
 */
export function topicCreation(specs: TopicSpec[], policy: TopicPolicy): ITopicConfig[] {
  return specs.map((s) => {
    const config: Record<string, string> = {};
    if (policy.minInsyncReplicas !== undefined) config['min.insync.replicas'] = String(policy.minInsyncReplicas);
    Object.assign(config, s.config);
    return {
      topic: s.topic,
      numPartitions: s.partitions,
      replicationFactor: policy.replicationFactor,
      configEntries: Object.entries(config).map(([name, value]) => ({ name, value })),
    };
  });
}

export async function ensureTopics(kafka: Kafka, specs: TopicSpec[] = TOPIC_SPECS, policy: TopicPolicy = BROKER_DEFAULTS): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.topic));
    if (missing.length === 0) return [];
    await admin.createTopics({ waitForLeaders: true, topics: topicCreation(missing, policy) });
    return missing.map((s) => s.topic);
  } finally {
    await admin.disconnect();
  }
}
