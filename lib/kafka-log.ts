/**
 * Which pino level a kafkajs log entry gets. Pure: no kafkajs client, no logger.
 *
 * kafkajs logs some routine things loudly: a notice about its v2 default partitioner (we keep the
 * default on purpose), a warning that our idempotent producers bound their retries (deliberate:
 * a producer that runs out fails its work and our own retry/restart policy takes over), and, at
 * error level, the retriable broker answers every client meets while Kafka starts or moves a
 * leader ("The coordinator is loading", "There is no leader for this topic-partition"). Those go
 * to debug; everything else keeps kafkajs' level. A crash that merely quotes one of those
 * messages ("Crash: ...", "Restarting the consumer ...") is not routine and keeps its level.
 */
export type KafkaLogLevel = 'error' | 'warn' | 'info' | 'debug';

/** kafkajs' numeric levels (kafkajs `logLevel`): ERROR 1, WARN 2, INFO 4, DEBUG 5. */
const KAFKAJS_LEVELS: Record<number, KafkaLogLevel> = { 1: 'error', 2: 'warn', 4: 'debug', 5: 'debug' };

/** Messages (their beginnings) that are routine at start-up or leadership changes. */
export const ROUTINE_KAFKAJS_MESSAGES: readonly string[] = [
  'KafkaJS v2.0.0 switched default partitioner',
  'Limiting retries for the idempotent producer may invalidate EoS guarantees',
  'The coordinator is loading',
  'The group coordinator is not available',
  'This is not the correct coordinator for this group',
  'There is no leader for this topic-partition',
  'This server is not the leader for that topic-partition',
];

export function kafkaLogLevel(level: number, message: unknown): KafkaLogLevel {
  const mapped = KAFKAJS_LEVELS[level] ?? 'debug';
  if (typeof message === 'string' && ROUTINE_KAFKAJS_MESSAGES.some((m) => message.startsWith(m))) return 'debug';
  return mapped;
}
