/**
 * Bounded fuzz of the real gateway (a child process, with a processor feeding its views): raw
 * malformed requests, every route with random and mutated bodies, WebSocket upgrades and frames
 * (tests/fuzz/). Fixed seed, so a failure names the case that reproduces it:
 * `npm run fuzz -- --target gateway --seed <seed> --case <n>`. Longer runs: `npm run fuzz`.
 */
import { describe, expect, it } from 'vitest';
import { distinct, formatViolation } from './fuzz/report.ts';
import { runGatewayTarget } from './fuzz/target-gateway.ts';

const SEED = 1;

describe('gateway under fuzz', () => {
  it('stays up, answers no 5xx, changes nothing on refusal, and still serves valid requests', async () => {
    const { stats, violations } = await runGatewayTarget({ seed: SEED, cases: 160, stormMs: 15_000, maxCrashes: 1 });
    expect(stats.cases).toBeGreaterThan(0);
    expect(distinct(violations).map(formatViolation).join('\n\n')).toBe('');
  }, 120_000);
});
