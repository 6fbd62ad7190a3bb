/** Shared by the benchmark scripts: a tiny flag parser (`--name value`, `--json`), percentiles, machine facts. */
import os from 'node:os';

export function parseArgs(argv: string[]): { json: boolean; has(name: string): boolean; get(name: string, fallback: number): number; text(name: string): string | undefined } {
  const has = (name: string) => argv.includes(`--${name}`);
  return {
    json: has('json'),
    has,
    /** The value after `--name`, as given; undefined when the flag is absent. */
    text(name) {
      const i = argv.indexOf(`--${name}`);
      return i >= 0 ? argv[i + 1] : undefined;
    },
    get(name, fallback) {
      const i = argv.indexOf(`--${name}`);
      if (i < 0) return fallback;
      const value = Number(argv[i + 1]);
      if (!Number.isFinite(value) || value <= 0) {
        process.stderr.write(`error: --${name} needs a positive number\n`);
        process.exit(2);
      }
      return value;
    },
  };
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function machine(): { cpus: number; cpuModel: string; memGiB: number; node: string } {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  };
}
