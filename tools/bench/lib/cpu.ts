/** CPU and memory sampling from Linux /proc, shared by the benchmark scripts. */
import fs from 'node:fs';

const CLK_TCK = 100; // Linux USER_HZ

/** Whole-machine CPU jiffies (Linux /proc/stat): busy and total, across all cores. */
export function machineJiffies(): { busy: number; total: number } | undefined {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - (f[3] ?? 0) - (f[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

/** Share of all cores busy between two machineJiffies() samples (2 decimals), null when either is missing. */
export function busyShare(j0: { busy: number; total: number } | undefined, j1: { busy: number; total: number } | undefined): number | null {
  return j0 && j1 ? +((j1.busy - j0.busy) / Math.max(1, j1.total - j0.total)).toFixed(2) : null;
}

/** Whole-machine CPU time (busy, total) in seconds, from /proc/stat. */
export function machineCpu(): { busyS: number; totalS: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busyS: (total - idle) / CLK_TCK, totalS: total / CLK_TCK };
}

/** CPU time (user+system, seconds) and memory of a process, from /proc. */
export function procStats(pid: number): { cpuS: number; rssBytes: number; hwmBytes: number } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuS = (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
    return { cpuS, rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM') };
  } catch {
    return undefined;
  }
}
