import { describe, expect, it } from 'vitest';
import { median, paired, ratio, Receipts } from './receipts.ts';

describe('Receipts', () => {
  it('keeps the first receipt of a version and tells superseded from missing', () => {
    const r = new Receipts();
    r.add('A', 5, 1000, 1040);
    r.add('A', 5, 1000, 1090); // a second receipt of the same version (a replay) does not count
    r.absorb([['A', 7, 1100, 1130], ['B/x', 3, 2000, 2010]]);
    const got = r.of(['A/5', 'A/6', 'A/7', 'B/x/3', 'B/x/4', 'C/1']);
    expect(got.values).toEqual(new Map([['A/5', 40], ['A/7', 30], ['B/x/3', 10]]));
    expect(got).toMatchObject({ matched: 3, superseded: 1, missing: 2 }); // A/6 superseded by A/7; B/x/4 and C/1 never came
    expect(got.stats).toMatchObject({ p50: 30, max: 40 });
    expect(r.settled('A/6')).toBe(true);
    expect(r.settled('B/x/4')).toBe(false);
    r.clear();
    expect(r.of(['A/5'])).toMatchObject({ matched: 0, missing: 1 });
  });
});

describe('ratio, paired, median', () => {
  it('divides per percentile, a denominator under 1 ms counting as 1 ms', () => {
    expect(ratio({ p50: 30, p95: 90, p99: 100, max: 1 }, { p50: 20, p95: 60, p99: 0, max: 1 })).toEqual({ p50: 1.5, p95: 1.5, p99: 100 });
  });

  it('differences the events both paths saw, and only those', () => {
    const a = new Map([['x/1', 50], ['x/2', 70], ['y/1', 10]]);
    const b = new Map([['x/1', 40], ['x/2', 75], ['z/1', 1]]);
    expect(paired(a, b)).toMatchObject({ events: 2, p50: -5, max: 10 });
  });

  it('takes the nearest-rank median without reordering its input', () => {
    const xs = [3, 1, 2, 10];
    expect(median(xs)).toBe(2);
    expect(xs).toEqual([3, 1, 2, 10]);
    expect(Number.isNaN(median([]))).toBe(true);
  });
});
