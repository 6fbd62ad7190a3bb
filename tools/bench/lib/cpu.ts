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

/** One thread's /proc/<pid>/task/<tid>/schedstat: ns on a core, ns runnable but waiting for one, time slices. */
export function parseSchedstat(text: string): { runNs: number; waitNs: number; slices: number } | undefined {
  const [run, wait, slices] = text.trim().split(/\s+/).map(Number);
  if (![run, wait, slices].every((n) => Number.isFinite(n))) return undefined;
  return { runNs: run!, waitNs: wait!, slices: slices! };
}

/**
 * How long all threads of a process have run, and waited in the kernel's run queue (runnable, no
 * core free), in ms, with their time slices: the part of a process's latency that is queueing for
 * a CPU rather than work (Linux schedstat; undefined where the kernel does not keep it). Threads
 * that ended since an earlier sample are not counted: compare samples of long-lived processes.
 */
export function procSched(pid: number): { runMs: number; waitMs: number; slices: number } | undefined {
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  let runNs = 0;
  let waitNs = 0;
  let slices = 0;
  let seen = 0;
  for (const tid of tids) {
    let s: ReturnType<typeof parseSchedstat>;
    try {
      s = parseSchedstat(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8'));
    } catch {
      continue; // the thread ended, or no schedstat
    }
    if (!s) continue;
    runNs += s.runNs;
    waitNs += s.waitNs;
    slices += s.slices;
    seen++;
  }
  return seen ? { runMs: runNs / 1e6, waitMs: waitNs / 1e6, slices } : undefined;
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
