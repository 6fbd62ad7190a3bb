/** Run identity and progress output shared by the benchmark scripts. */
import { randomBytes } from 'node:crypto';

/** A progress line on stderr (stdout is kept for the result). */
export const progress = (line: string): void => void process.stderr.write(`${line}\n`);

/** A unique, sortable id for one run: base-36 time and `bytes` random bytes in hex. */
export function runId(bytes = 2): string {
  return `${Date.now().toString(36)}-${randomBytes(bytes).toString('hex')}`;
}
