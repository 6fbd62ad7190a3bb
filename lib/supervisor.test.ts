import { describe, expect, it } from 'vitest';
import { backoffDelay, renderChildTable, type ChildStatus } from './supervisor.ts';

const child = (over: Partial<ChildStatus>): ChildStatus => ({
  name: 'gateway',
  state: 'running',
  pid: 1234,
  crashes: 0,
  restarts: 0,
  info: {},
  lastExit: null,
  nextStartAt: null,
  reason: null,
  ...over,
});

describe('backoffDelay', () => {
  it('doubles from the initial delay and is capped', () => {
    const p = { initialMs: 500, maxMs: 30_000 };
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelay(p, n))).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  });

  it('never overflows for a long crash streak', () => {
    expect(backoffDelay({ initialMs: 500, maxMs: 30_000 }, 10_000)).toBe(30_000);
    expect(backoffDelay({ initialMs: 500, maxMs: 30_000 }, 0)).toBe(500);
  });
});

describe('renderChildTable', () => {
  it('shows pid, state, restarts and crashes of each child, and why one failed', () => {
    const text = renderChildTable(
      [
        child({ name: 'processor', pid: 11, restarts: 2, crashes: 2 }),
        child({ name: 'gateway', state: 'backoff', pid: null, crashes: 1, nextStartAt: 11_500 }),
        child({ name: 'connectors', state: 'failed', pid: null, crashes: 1, reason: 'exited with code 2 while starting' }),
      ],
      (c) => (c.name === 'processor' ? 'CDC partitions 0' : ''),
      10_000,
    );
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/process\s+pid\s+state\s+restarts\s+crashes/);
    expect(lines[1]).toMatch(/processor\s+11\s+running\s+2\s+2\s+CDC partitions 0/);
    expect(lines[2]).toMatch(/gateway\s+-\s+backoff\s+0\s+1\s+restart in 1\.5s/);
    expect(lines[3]).toMatch(/connectors\s+-\s+failed\s+0\s+1\s+exited with code 2 while starting/);
  });
});
