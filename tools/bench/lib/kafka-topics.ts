/** Kafka helpers shared by the benchmark scripts: private topics and groups, a consumer starting at the end. */
import type { Consumer, EachMessagePayload, Kafka } from 'kafkajs';
import { progress } from './run.ts';

/** Creates the benchmark's private topics and waits for their leaders. */
export async function createPrivateTopics(kafka: Kafka, topics: Array<{ topic: string; numPartitions: number }>): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ waitForLeaders: true, topics });
  } finally {
    await admin.disconnect();
  }
}

/**
 * Deletes the benchmark's consumer groups and those of its private topics that exist. Failures are
 * reported on stderr (`topicsFailure` names what could not be deleted), never thrown.
 */
export async function deletePrivateTopicsAndGroups(kafka: Kafka, groups: string[], topics: string[], topicsFailure = 'could not delete topics'): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.deleteGroups(groups).catch((err: Error) => progress(`  cleanup: could not delete consumer groups: ${err.message}`));
    const existing = new Set(await admin.listTopics());
    const mine = topics.filter((t) => existing.has(t));
    if (mine.length) await admin.deleteTopics({ topics: mine, timeout: 30_000 });
  } catch (err) {
    progress(`  cleanup: ${topicsFailure}: ${(err as Error).message}`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Deletes one consumer group; a failure is reported on stderr, never thrown. */
export async function deleteGroup(kafka: Kafka, groupId: string): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.deleteGroups([groupId]);
  } catch (err) {
    progress(`  cleanup: could not delete consumer group ${groupId}: ${(err as Error).message}`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * A consumer on a fresh group that reads `topic` from its current end (each partition is sought to
 * its high watermark), with a low fetch wait; every message goes to `eachMessage`.
 */
export async function consumeFromEnd(kafka: Kafka, topic: string, groupId: string, eachMessage: (payload: EachMessagePayload) => Promise<void>): Promise<Consumer> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 10, minBytes: 1 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage });
  for (const p of ends) consumer.seek({ topic, partition: p.partition, offset: p.high });
  return consumer;
}
