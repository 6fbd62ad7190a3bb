/**
 * Bounded fuzz of the stock processor (a child process): garbage and mutated Debezium events on
 * the real CDC topic. The processor stays up, every partition moves past the storm, and the dead
 * letters of this run equal the poison messages injected; the same for the movement relay, which
 * follows the same topic. Fixed seed; longer runs: `npm run fuzz`.
 */
import { describe, expect, it } from 'vitest';
import { distinct, formatViolation } from './fuzz/report.ts';
import { runProcessorTarget } from './fuzz/target-processor.ts';

describe('stock processor under fuzz', () => {
  it('dead-letters exactly the poison, applies the rest and keeps every partition moving', async () => {
    const { stats, violations } = await runProcessorTarget({ seed: 1, cases: 80 });
    expect(stats.poison).toBeGreaterThan(0);
    expect(distinct(violations).map(formatViolation).join('\n\n')).toBe('');
    expect(stats.dlq).toBe(stats.poison);
    // The movement relay read the same storm: its refusals dead-lettered, nothing more.
    expect(stats.relayPoison).toBeGreaterThan(0);
    expect(stats.relayDlq).toBe(stats.relayPoison);
  }, 120_000);
});
