/**
 * Bounded fuzz of the inbound connector (`connectors/main.ts` as a child process): Avro records
 * that break the rules, mutated Avro bytes, unknown schema ids, non-Avro frames and wrong keys on
 * the real `stock.adjustments` topic. The connector stays up, every partition moves past the
 * storm, dead letters equal what the rules refuse, and on hand equals what the rules say.
 */
import { describe, expect, it } from 'vitest';
import { distinct, formatViolation } from './fuzz/report.ts';
import { runConnectorsTarget } from './fuzz/target-connectors.ts';

describe('inbound connector under fuzz', () => {
  it('dead-letters exactly what the rules refuse and applies the rest once', async () => {
    const { stats, violations } = await runConnectorsTarget({ seed: 1, cases: 80 });
    expect(stats.poison).toBeGreaterThan(0);
    expect(distinct(violations).map(formatViolation).join('\n\n')).toBe('');
  }, 120_000);
});
