import { describe, expect, it } from 'vitest';
import { faultResult, invariant, renderReport, verdict } from './report.ts';
import { parseOptions, rng, UsageError } from './options.ts';

describe('chaos report', () => {
  it('fails the run when a required invariant is not 0, not when a reported one is', () => {
    const base = { seed: 1, minutes: 1, run: 'r', faults: [], workload: {} };
    expect(verdict({ ...base, invariants: [invariant('oversell', 0), invariant('duplicate events', 3, '', false)] }).ok).toBe(true);
    expect(verdict({ ...base, invariants: [invariant('oversell', 1)] }).ok).toBe(false);
  });

  it('judges recovery against 5 s (10 s for the Kafka broker), measured from the component being back', () => {
    expect(faultResult({ fault: 'kafka', atS: 1, downMs: 7000, recoveryMs: 15_000, afterBackMs: 8000 }, true).ok).toBe(true);
    expect(faultResult({ fault: 'redis', atS: 1, downMs: 100, recoveryMs: 7000, afterBackMs: 6900 }, true).ok).toBe(false);
    expect(faultResult({ fault: 'processor', atS: 1, downMs: 0, recoveryMs: null, afterBackMs: null }, true).ok).toBe(false);
    expect(faultResult({ fault: 'processor', atS: 1, downMs: 0, recoveryMs: null, afterBackMs: null }, false).ok).toBe(true);
  });

  it('renders every invariant and fault as a row', () => {
    const text = renderReport(
      verdict({
        seed: 7,
        minutes: 2,
        run: 'chaos-x',
        invariants: [invariant('oversell', 0, 'sold 10 of 10')],
        faults: [faultResult({ fault: 'gateway', atS: 30, downMs: 10, recoveryMs: 1200, afterBackMs: 1190 }, true)],
        workload: { purchases: 10 },
      }),
    );
    expect(text).toMatch(/oversell\s+0\s+ok\s+sold 10 of 10/);
    expect(text).toMatch(/gateway\s+30 s\s+0\.0 s\s+1\.2 s\s+1\.2 s\s+5\.0 s\s+ok/);
    expect(text.endsWith('PASS')).toBe(true);
  });
});

describe('chaos options', () => {
  it('parses the documented flags and refuses unknown faults', () => {
    const o = parseOptions(['--minutes', '2', '--seed=42', '--faults', 'processor,redis', '--json']);
    expect(o).toMatchObject({ minutes: 2, seed: 42, faults: ['processor', 'redis'], json: true });
    expect(() => parseOptions(['--faults', 'disk'])).toThrow(UsageError);
    expect(() => parseOptions(['--minutes', 'x'])).toThrow(UsageError);
  });

  it('draws the same numbers for the same seed', () => {
    const a = rng(5);
    const b = rng(5);
    expect([a(), a(), a()]).toEqual([b(), b(), b()]);
  });
});
