/**
 * The chaos run's verdict (pure): every invariant of issue 11 with its measured value, whether it
 * must hold, and the per-fault recovery times; rendered as a table or as JSON.
 */
import { recoveryTargetMs, type FaultName } from './options.ts';

export interface InvariantResult {
  name: string;
  value: number;
  /** false: reported only (e.g. duplicate events, which consumers dedupe by id). */
  required: boolean;
  ok: boolean;
  detail: string;
}

export interface FaultResult {
  fault: FaultName;
  atS: number;
  /** Time from the fault to the component/process being back (restart done). */
  downMs: number;
  /** Fault → first fresh change (written after the fault) seen by a subscriber. */
  recoveryMs: number | null;
  /** Component back → that change seen. */
  afterBackMs: number | null;
  targetMs: number;
  ok: boolean;
  note: string;
}

export interface ChaosReport {
  seed: number;
  minutes: number;
  run: string;
  ok: boolean;
  invariants: InvariantResult[];
  faults: FaultResult[];
  workload: Record<string, number | string>;
}

export function invariant(name: string, value: number, detail = '', required = true): InvariantResult {
  return { name, value, required, ok: !required || value === 0, detail };
}

export function faultResult(f: { fault: FaultName; atS: number; downMs: number; recoveryMs: number | null; afterBackMs: number | null; note?: string }, enforce: boolean): FaultResult {
  const targetMs = recoveryTargetMs(f.fault);
  const measured = f.afterBackMs ?? f.recoveryMs;
  const ok = !enforce || (measured !== null && measured <= targetMs);
  return { ...f, targetMs, ok, note: f.note ?? '' };
}

export function verdict(r: Omit<ChaosReport, 'ok'>): ChaosReport {
  return { ...r, ok: r.invariants.every((i) => i.ok) && r.faults.every((f) => f.ok) };
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const secs = (ms: number | null) => (ms === null ? 'never' : `${(ms / 1000).toFixed(1)} s`);

export function renderReport(r: ChaosReport): string {
  const inv = table(
    ['INVARIANT', 'VALUE', 'RESULT', 'DETAIL'],
    r.invariants.map((i) => [i.name, String(i.value), i.required ? (i.ok ? 'ok' : 'FAIL') : 'reported', i.detail]),
  );
  const faults = table(
    ['FAULT', 'AT', 'DOWN', 'FRESH CHANGE AFTER FAULT', 'AFTER BACK', 'TARGET', 'RESULT', 'NOTE'],
    r.faults.map((f) => [f.fault, `${f.atS.toFixed(0)} s`, secs(f.downMs), secs(f.recoveryMs), secs(f.afterBackMs), secs(f.targetMs), f.ok ? 'ok' : 'SLOW', f.note]),
  );
  const work = Object.entries(r.workload).map(([k, v]) => `${k}=${v}`).join('  ');
  return `chaos run ${r.run} (seed ${r.seed}, ${r.minutes} min)\n\n${inv}\n\n${faults}\n\nworkload: ${work}\n\n${r.ok ? 'PASS' : 'FAIL'}`;
}
