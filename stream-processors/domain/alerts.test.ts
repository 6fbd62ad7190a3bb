import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  alertId,
  alertInputs,
  bandCrossings,
  initialAlertState,
  rearmLevel,
  runAlerts,
  stepAlert,
  thresholdFor,
  thresholdKey,
  thresholdProblem,
  type AlertKind,
  type AlertState,
} from './alerts.ts';

const kinds = (figures: number[], threshold: number, start?: AlertState) => runAlerts(figures, threshold, start).map((a) => a.kind);

describe('rearmLevel', () => {
  it('is the threshold plus 10 % rounded up, at least one unit', () => {
    expect(rearmLevel(0)).toBe(1);
    expect(rearmLevel(1)).toBe(2);
    expect(rearmLevel(10)).toBe(11);
    expect(rearmLevel(11)).toBe(13);
    expect(rearmLevel(100)).toBe(110);
  });
});

describe('stepAlert', () => {
  it('starts silently from the first figure', () => {
    expect(stepAlert(undefined, 0, 10)).toEqual({ state: 'out', kind: null });
    expect(stepAlert(undefined, 3, 10)).toEqual({ state: 'low', kind: null });
    expect(stepAlert(undefined, 10, 10)).toEqual({ state: 'in_stock', kind: null });
    expect(initialAlertState(-2, 0)).toBe('out');
  });

  it('fires LOW_STOCK below the threshold, OUT_OF_STOCK at 0, BACK_IN_STOCK above 0', () => {
    expect(kinds([50, 9, 0, 4], 10)).toEqual<AlertKind[]>(['LOW_STOCK', 'OUT_OF_STOCK', 'BACK_IN_STOCK']);
    // straight from in stock to 0: one alert, not two
    expect(kinds([50, 0], 10)).toEqual(['OUT_OF_STOCK']);
  });

  it('a figure oscillating around the threshold fires once; re-armed only at the re-arm level', () => {
    expect(kinds([20, 9, 10, 9, 10, 9, 10, 9], 10)).toEqual(['LOW_STOCK']);
    expect(kinds([20, 9, 10, 11, 9], 10)).toEqual(['LOW_STOCK', 'LOW_STOCK']);
  });

  it('back in stock below the re-arm level counts as low already', () => {
    expect(kinds([20, 0, 5, 9, 3], 10)).toEqual(['OUT_OF_STOCK', 'BACK_IN_STOCK']);
    expect(stepAlert('out', 10, 10)).toEqual({ state: 'low', kind: 'BACK_IN_STOCK' });
    expect(stepAlert('out', 11, 10)).toEqual({ state: 'in_stock', kind: 'BACK_IN_STOCK' });
  });

  it('threshold 0: only out of stock and back in stock', () => {
    expect(kinds([5, 1, 0, 1, 0, 3], 0)).toEqual(['OUT_OF_STOCK', 'BACK_IN_STOCK', 'OUT_OF_STOCK', 'BACK_IN_STOCK']);
  });

  it('the same figure twice changes nothing the second time', () => {
    for (const state of ['in_stock', 'low', 'out'] as const) {
      for (const a of [0, 5, 10, 11, 50]) {
        const once = stepAlert(state, a, 10);
        expect(stepAlert(once.state, a, 10)).toEqual({ state: once.state, kind: null });
      }
    }
  });
});

const figures = fc.array(fc.integer({ min: -3, max: 40 }), { maxLength: 80 });
const threshold = fc.integer({ min: 0, max: 30 });

describe('properties', () => {
  it('alerts never outnumber the crossings of the hysteresis band', () => {
    fc.assert(
      fc.property(figures, threshold, (xs, t) => {
        expect(runAlerts(xs, t).length).toBeLessThanOrEqual(bandCrossings(xs, t));
      }),
      { numRuns: 2000 },
    );
  });

  it('no alert repeats without a real crossing in between', () => {
    fc.assert(
      fc.property(figures, threshold, (xs, t) => {
        const alerts = runAlerts(xs, t);
        for (let i = 1; i < alerts.length; i++) {
          const [a, b] = [alerts[i - 1]!, alerts[i]!];
          if (a.kind !== b.kind) continue;
          const between = xs.slice(a.index + 1, b.index);
          if (a.kind === 'LOW_STOCK') expect(between.some((x) => x >= rearmLevel(t) || x <= 0)).toBe(true);
          if (a.kind === 'OUT_OF_STOCK') expect(between.some((x) => x > 0)).toBe(true);
          if (a.kind === 'BACK_IN_STOCK') expect(between.some((x) => x <= 0)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('OUT_OF_STOCK and BACK_IN_STOCK alternate, and each matches its figure', () => {
    fc.assert(
      fc.property(figures, threshold, (xs, t) => {
        const edges = runAlerts(xs, t).filter((a) => a.kind !== 'LOW_STOCK');
        edges.forEach((a, i) => {
          if (i > 0) expect(a.kind).not.toBe(edges[i - 1]!.kind);
          expect(xs[a.index]! > 0).toBe(a.kind === 'BACK_IN_STOCK');
        });
        for (const a of runAlerts(xs, t)) if (a.kind === 'LOW_STOCK') expect(xs[a.index]! > 0 && xs[a.index]! < t).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('duplicates of a figure (a replayed change) fire nothing more', () => {
    fc.assert(
      fc.property(figures, threshold, fc.array(fc.nat(), { maxLength: 10 }), (xs, t, dupAt) => {
        const withDups = [...xs];
        for (const d of dupAt) if (withDups.length) withDups.splice(d % withDups.length, 0, withDups[d % withDups.length]!);
        expect(kinds(withDups, t)).toEqual(kinds(xs, t));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('alertInputs', () => {
  it('is the pooled figure today, plus one per valid channel (sorted) once summaries carry channels', () => {
    expect(alertInputs({ available: 7 })).toEqual([{ channel: null, available: 7 }]);
    expect(alertInputs({ available: 7, channels: { web: 3, 'app.ios': 4, 'BAD ID': 1 } })).toEqual([
      { channel: null, available: 7 },
      { channel: 'app.ios', available: 4 },
      { channel: 'web', available: 3 },
    ]);
  });
});

describe('thresholds', () => {
  const table = {
    defaultThreshold: 5,
    bySkuChannel: new Map([
      [thresholdKey('A', null), 20],
      [thresholdKey('A', 'web'), 7],
    ]),
  };
  it('a channel row beats the SKU row, which beats the default', () => {
    expect(thresholdFor(table, 'A', 'web')).toBe(7);
    expect(thresholdFor(table, 'A', 'app')).toBe(20);
    expect(thresholdFor(table, 'A', null)).toBe(20);
    expect(thresholdFor(table, 'B', 'web')).toBe(5);
  });
  it('refuses negative, fractional, huge and non-numeric thresholds', () => {
    expect(thresholdProblem(0)).toBeNull();
    expect(thresholdProblem(12)).toBeNull();
    expect(thresholdProblem(-1)).toMatch(/negative/);
    expect(thresholdProblem(1.5)).toMatch(/whole/);
    expect(thresholdProblem('3')).toMatch(/whole/);
    expect(thresholdProblem(2e9)).toMatch(/at most/);
  });
});

describe('alertId', () => {
  it('is stable per decision and distinct per channel, version and kind', () => {
    const a = { sku: 'S|1', channel: null, version: 42, kind: 'LOW_STOCK' as const };
    expect(alertId(a)).toBe('S|1||42|LOW_STOCK');
    expect(alertId({ ...a, channel: 'web' })).toBe('S|1|web|42|LOW_STOCK');
    expect(new Set([alertId(a), alertId({ ...a, version: 43 }), alertId({ ...a, kind: 'OUT_OF_STOCK' })]).size).toBe(3);
  });
});
