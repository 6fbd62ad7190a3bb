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

/**
 * A retriable broker error during creation (on a fresh cluster: "This server does not host this
 * topic-partition" while the new topics' leaders are elected and their metadata spreads over the
 * brokers) is waited out: the topics are listed again and what is still missing created again,
 * up to `attempts` times, a second apart. Returns the topics this call created.
 */
export async function ensureTopics(kafka: Kafka, specs: TopicSpec[] = TOPIC_SPECS, policy: TopicPolicy = BROKER_DEFAULTS, attempts = 15): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  const created = new Set<string>();
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const existing = new Set(await admin.listTopics());
        const missing = specs.filter((s) => !existing.has(s.topic));
        if (missing.length > 0) {
          for (const s of missing) created.add(s.topic);
          await admin.createTopics({ waitForLeaders: true, topics: topicCreation(missing, policy) });
        }
        // Every topic has a leader for each partition, as every broker sees it.
        await admin.fetchTopicMetadata({ topics: specs.map((s) => s.topic) });
        return specs.map((s) => s.topic).filter((t) => created.has(t));
      } catch (err) {
        if ((err as { retriable?: unknown }).retriable !== true || attempt >= attempts) throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  } finally {
    await admin.disconnect();
  }
}
