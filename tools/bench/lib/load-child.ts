/** Runs the purchase load client (tools/bench/flash-sale-load.ts) as a child process against a server on a loopback port. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { LoadSummary } from '../flash-sale-load.ts';
import { spawnNode, stopChild } from './children.ts';
import { progress } from './run.ts';

export interface LoadChildOptions {
  attempts: number;
  clients: number;
  customers: number;
  maxSeconds: number;
}

export interface LoadChildExtras {
  /** The storefront-backend credential it sends (purchase:act-for). */
  apiKey?: string;
  /** The sales channel every purchase names. */
  channel?: string;
  /** Called when its connections are open and primed: its clock starts then. */
  onPrimed?: () => void;
}

/** Runs the load child against a server on `port` and returns its summary. */
export async function runLoadChild(port: number, sku: string, o: LoadChildOptions, { apiKey, channel, onPrimed }: LoadChildExtras = {}): Promise<LoadSummary> {
  let summary: LoadSummary | undefined;
  const child = spawnNode(
    'load',
    'tools/bench/flash-sale-load.ts',
    [
      ...['--port', String(port), '--sku', sku, '--clients', String(o.clients), '--attempts', String(o.attempts), '--customers', String(o.customers), '--max-seconds', String(o.maxSeconds)],
      ...(apiKey ? ['--api-key', apiKey] : []),
      ...(channel ? ['--channel', channel] : []),
    ],
    {
      onStdoutLine: (line) => {
        try {
          const msg = JSON.parse(line) as LoadSummary;
          if (msg.type === 'summary') summary = msg;
        } catch {
          progress(`  [load] ${line}`);
        }
      },
      onStderrLine: (line) => {
        if (line.includes('open and primed')) onPrimed?.();
        progress(`  [load] ${line}`);
      },
    },
  );
  const code = await Promise.race([child.exited, sleep((o.maxSeconds + 60) * 1000).then(() => 'timeout' as const)]);
  if (code === 'timeout') {
    await stopChild(child, 2000);
    throw new Error('the load child did not finish');
  }
  if (!summary) throw new Error(`the load child exited (${String(code)}) without a summary`);
  return summary;
}
