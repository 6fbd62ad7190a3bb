import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { BROKER_DEFAULTS, topicCreation } from './ensure-topics.ts';
import { TOPIC_SPECS, TOPICS } from './topics.ts';

const levels = TOPIC_SPECS.find((s) => s.topic === TOPICS.stockLevels)!;
const entries = (t: { configEntries?: Array<{ name: string; value: string }> }) => Object.fromEntries((t.configEntries ?? []).map((e) => [e.name, e.value]));

describe('topic creation', () => {
  it("leaves replication to the brokers by default, and keeps each topic's own settings", () => {
    const [t] = topicCreation([levels], BROKER_DEFAULTS);
    expect(t).toMatchObject({ topic: 'stock.levels', numPartitions: 6, replicationFactor: -1 });
    expect(entries(t!)).toEqual({ 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '60000' });
  });

  it('replicates as configured and asks for the in-sync replicas a write needs', () => {
    const policy = loadConfig({ KAFKA_TOPIC_REPLICATION_FACTOR: '3', KAFKA_TOPIC_MIN_INSYNC_REPLICAS: '2' }).topics;
    const created = topicCreation(TOPIC_SPECS, policy);
    expect(created.every((t) => t.replicationFactor === 3)).toBe(true);
    expect(created.every((t) => entries(t)['min.insync.replicas'] === '2')).toBe(true);
    expect(entries(created.find((t) => t.topic === 'stock.levels')!)['cleanup.policy']).toBe('compact');
  });

  it('refuses settings under which no write could be acknowledged, naming the variable', () => {
    expect(() => loadConfig({ KAFKA_TOPIC_REPLICATION_FACTOR: '1', KAFKA_TOPIC_MIN_INSYNC_REPLICAS: '2' })).toThrow(/KAFKA_TOPIC_MIN_INSYNC_REPLICAS \(2\) is more than KAFKA_TOPIC_REPLICATION_FACTOR \(1\)/);
    expect(() => loadConfig({ KAFKA_TOPIC_REPLICATION_FACTOR: '0' })).toThrow(/KAFKA_TOPIC_REPLICATION_FACTOR/);
    expect(loadConfig({}).topics).toEqual({ replicationFactor: -1, minInsyncReplicas: undefined });
  });
});
