/** HTTP helpers shared by the benchmark scripts: a free port, readiness polling, Prometheus scraping. */
import { setTimeout as sleep } from 'node:timers/promises';
export { freePort } from '../../stack/proc.ts';


/** Polls `url` until it answers `status`; fails when `alive()` turns false or after `timeoutMs`. */
export async function waitHttp(url: string, timeoutMs: number, child?: { name: string; alive(): boolean }, status = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child && !child.alive()) throw new Error(`${child.name} exited before ${url} answered`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.status === status) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(200);
  }
  throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms (last: ${last})`);
}

/** Selected samples of a Prometheus text exposition (unlabelled, or summed over labels). */
export async function scrapeMetrics(url: string, names: string[], timeoutMs = 10_000): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || !names.includes(m[1]!)) continue;
    out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[3]);
  }
  return out;
}
