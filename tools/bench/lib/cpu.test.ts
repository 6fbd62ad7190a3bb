import { describe, expect, it } from 'vitest';
import { parseSchedstat, procSched } from './cpu.ts';

describe('parseSchedstat', () => {
  it('reads time on a core, time waiting for one, and time slices', () => {
    expect(parseSchedstat('1298000000 8178000000 1632\n')).toEqual({ runNs: 1_298_000_000, waitNs: 8_178_000_000, slices: 1632 });
  });

  it('refuses what is not three numbers', () => {
    expect(parseSchedstat('')).toBeUndefined();
    expect(parseSchedstat('12 x 3')).toBeUndefined();
    expect(parseSchedstat('12 34')).toBeUndefined();
  });
});

describe('procSched', () => {
  it('sums the threads of a live process, and gives undefined for one that is not there', () => {
    // The benchmarks run on Linux (this project's machines); the kernel keeps schedstat there.
    const own = procSched(process.pid)!;
    expect(own.runMs).toBeGreaterThan(0);
    expect(own.waitMs).toBeGreaterThanOrEqual(0);
    expect(own.slices).toBeGreaterThan(0);
    expect(procSched(2 ** 22 + 7)).toBeUndefined();
  });
});
