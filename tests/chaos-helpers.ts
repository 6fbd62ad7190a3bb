/**
 * The short, fixed-seed chaos runs of the suites (tests/chaos.int.test.ts on the single-node stack,
 * tests/cluster/platform-cluster.int.test.ts on the cluster topology): small workload sizes, the
 * recovery times reported rather than enforced, and the checks both make of the report.
 */
import { expect } from 'vitest';
import type { Config } from '../lib/config.ts';
import { parseOptions, type FaultName } from '../tools/chaos/options.ts';
import { renderReport, type ChaosReport } from '../tools/chaos/report.ts';
import { runChaos } from '../tools/chaos/run.ts';

/** Runs the harness with the suite's sizes; `text` is the report and the progress lines, for failure messages. */
export async function shortChaosRun(config: Readonly<Config>, argv: string[]): Promise<{ report: ChaosReport; text: string }> {
  const options = { ...parseOptions(argv), units: 60, buyers: 12, subscribers: 6, adjustmentsPerSec: 3, erpPerSec: 3, recoveryTargets: false };
  const lines: string[] = [];
  const report = await runChaos(config, options, (line) => lines.push(line));
  return { report, text: `${renderReport(report)}\n\n${lines.join('\n')}` };
}

/** Every required invariant 0, the faults injected in order, a fresh change after each, orders and adjustments made. */
export function expectInvariantsHeld(report: ChaosReport, text: string, faults: FaultName[]): void {
  for (const inv of report.invariants.filter((i) => i.required)) expect(inv.value, `${inv.name}\n${text}`).toBe(0);
  expect(report.faults.map((f) => f.fault)).toEqual(faults);
  for (const f of report.faults) expect(f.recoveryMs, `no fresh change reached a subscriber after ${f.fault}\n${text}`).not.toBeNull();
  // The workload did run through the faults.
  expect(Number(report.workload.ordersAcknowledged), text).toBeGreaterThan(0);
  expect(Number(report.workload.adjustmentsAcked), text).toBeGreaterThan(0);
}
