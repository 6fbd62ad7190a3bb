/** What a fuzz run reports: each violation with the seed and case index that reproduce it. */
export interface Violation {
  target: 'gateway' | 'processor' | 'connectors' | 'mapping';
  seed: number;
  /** Case index within the run (-1: a check after the storm, not one case). */
  index: number;
  kind: string;
  /** The input, printable. */
  input: string;
  problem: string;
  detail?: string;
}

export function formatViolation(v: Violation): string {
  const repro = v.index >= 0 ? `npm run fuzz -- --target ${v.target} --seed ${v.seed} --case ${v.index}` : `npm run fuzz -- --target ${v.target} --seed ${v.seed}`;
  return [`[${v.target}] ${v.problem}`, `  input: ${v.input}`, ...(v.detail ? [`  detail: ${v.detail.replaceAll('\n', '\n          ')}`] : []), `  reproduce: ${repro}`].join('\n');
}

/** One violation per distinct problem (a crash repeated 30 times is one finding). */
export function distinct(vs: Violation[]): Violation[] {
  const seen = new Set<string>();
  return vs.filter((v) => {
    const k = `${v.target}|${v.problem.replace(/\d+/g, 'N')}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
