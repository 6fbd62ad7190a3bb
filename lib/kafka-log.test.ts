import { describe, expect, it } from 'vitest';
import { logLevel } from 'kafkajs';
import { kafkaLogLevel } from './kafka-log.ts';

describe('kafkaLogLevel', () => {
  it('keeps kafkajs levels for what is not routine', () => {
    expect(kafkaLogLevel(logLevel.ERROR, 'Failed to connect to broker, reconnecting')).toBe('error');
    expect(kafkaLogLevel(logLevel.WARN, 'The group is rebalancing, re-joining')).toBe('warn');
    expect(kafkaLogLevel(logLevel.INFO, 'Consumer has joined the group')).toBe('debug');
    expect(kafkaLogLevel(logLevel.DEBUG, 'Request Metadata(key: 3, version: 6)')).toBe('debug');
  });

  it('demotes the start-up notices and retriable start-up answers to debug', () => {
    expect(kafkaLogLevel(logLevel.WARN, 'KafkaJS v2.0.0 switched default partitioner. To retain the same partitioning behavior ...')).toBe('debug');
    expect(kafkaLogLevel(logLevel.WARN, 'Limiting retries for the idempotent producer may invalidate EoS guarantees')).toBe('debug');
    expect(kafkaLogLevel(logLevel.ERROR, "The coordinator is loading and hence can't process requests for this group")).toBe('debug');
    expect(kafkaLogLevel(logLevel.ERROR, 'There is no leader for this topic-partition as we are in the middle of a leadership election')).toBe('debug');
    expect(kafkaLogLevel(logLevel.ERROR, 'The group coordinator is not available')).toBe('debug');
  });

  it('keeps a crash that quotes a routine message at its level', () => {
    expect(kafkaLogLevel(logLevel.ERROR, "Crash: KafkaJSNumberOfRetriesExceeded: The coordinator is loading and hence can't process requests for this group")).toBe('error');
    expect(kafkaLogLevel(logLevel.ERROR, 'Restarting the consumer in 2000ms')).toBe('error');
  });

  it('tolerates a missing or odd message', () => {
    expect(kafkaLogLevel(logLevel.ERROR, undefined)).toBe('error');
    expect(kafkaLogLevel(99, 'x')).toBe('debug');
  });
});
