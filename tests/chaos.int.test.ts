/**
 * The short, fixed-seed chaos run of the suite (the long one: `npm run chaos -- --minutes 5`,
 * docs/reliability.md). The platform runs as separate processes (processor, two gateways,
 * connectors) under a flash sale, WMS adjustments, ERP SQL writes and resuming WebSocket
 * subscribers, while the processor and a gateway are SIGKILLed and, on the native stack, Redis
 * too; afterwards every invariant of issue 11 must hold. Recovery *times* are reported by the
 * harness, not asserted here (speed belongs to the benchmark-like long run); that a fresh change
 * reaches subscribers again after every fault is asserted.
 */
import { describe, expect, it } from 'vitest';
import type { FaultName } from '../tools/chaos/options.ts';
import { expectInvariantsHeld, shortChaosRun } from './chaos-helpers.ts';
import { testConfig } from './helpers.ts';

const config = testConfig();
const faults: FaultName[] = config.stack.mode === 'native' ? ['processor', 'gateway', 'redis'] : ['processor', 'gateway'];

describe('chaos: short fixed-seed run', () => {
  it(`keeps every invariant through ${faults.join(', ')} kills`, { timeout: 600_000 }, async () => {
    const { report, text } = await shortChaosRun(config, ['--minutes', '1', '--seed', '11', '--faults', faults.join(',')]);
    expectInvariantsHeld(report, text, faults);
    expect(Number(report.workload.erpCommitted), text).toBeGreaterThan(0);
    expect(report.ok, text).toBe(true);
  });
});
