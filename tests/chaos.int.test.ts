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
import { parseOptions, type FaultName } from '../tools/chaos/options.ts';
import { renderReport } from '../tools/chaos/report.ts';
import { runChaos } from '../tools/chaos/run.ts';
import { testConfig } from './helpers.ts';

const config = testConfig();
const faults: FaultName[] = config.stack.mode === 'native' ? ['processor', 'gateway', 'redis'] : ['processor', 'gateway'];

describe('chaos: short fixed-seed run', () => {
  it(`keeps every invariant through ${faults.join(', ')} kills`, { timeout: 600_000 }, async () => {
    const options = {
      ...parseOptions(['--minutes', '1', '--seed', '11', '--faults', faults.join(',')]),
      units: 60,
      buyers: 12,
      subscribers: 6,
      adjustmentsPerSec: 3,
      erpPerSec: 3,
      recoveryTargets: false,
    };
    const lines: string[] = [];
    const report = await runChaos(config, options, (line) => lines.push(line));
    const text = `${renderReport(report)}\n\n${lines.join('\n')}`;
    for (const inv of report.invariants.filter((i) => i.required)) expect(inv.value, `${inv.name}\n${text}`).toBe(0);
    expect(report.faults.map((f) => f.fault)).toEqual(faults);
    for (const f of report.faults) expect(f.recoveryMs, `no fresh change reached a subscriber after ${f.fault}\n${text}`).not.toBeNull();
    // The workload did run through the faults.
    expect(Number(report.workload.ordersAcknowledged), text).toBeGreaterThan(0);
    expect(Number(report.workload.adjustmentsAcked), text).toBeGreaterThan(0);
    expect(Number(report.workload.erpCommitted), text).toBeGreaterThan(0);
    expect(report.ok, text).toBe(true);
  });
});
