/**
 * The WebSocket subscriber of the latency benchmarks: the typed SDK (gateway/client/sdk.ts,
 * `StockClient` with the `ws` WebSocket) in a child process of its own, subscribed to the
 * benchmark rows, reporting (sku, version, commitTs, receipt time) for every item of every live
 * `deltas` event. `nodeClient()` spawns it (this file run as a script) and collects its receipts.
 *
 * As a script: --url WS_URL (query parameters kept, e.g. `?sales_channel=<id>`) --sku-prefix P
 * --rows N [--max-seconds 300]. Prints JSON lines on stdout: `{"type":"ready"}` once the snapshot
 * holds every SKU, then `{"type":"items","items":[...]}` every 100 ms; exits when stdin closes.
 */
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { spawnNode, stopChild, type Child } from './children.ts';
import { benchSku } from './update-load.ts';

/** One received item: sku, version, commitTs, receipt time. */
export type Receipt = [string, number, number, number];

/** Where a benchmark's receipts come from (the SDK child, or a browser page). */
export interface ReceiptSource {
  name: string;
  ready: Promise<void>;
  /** Receipts so far (the Node client pushes them; the browser is polled). */
  collect(): Promise<Receipt[]>;
  stop(): Promise<void>;
}

async function clientMain(argv: string[]): Promise<void> {
  const { StockClient } = await import('../../../gateway/client/sdk.ts');
  const get = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const url = get('url')!;
  const skuPrefix = get('sku-prefix')!;
  const rows = Number(get('rows'));
  const maxSeconds = Number(get('max-seconds') ?? 300);
  const skus = Array.from({ length: rows }, (_, i) => benchSku(skuPrefix, i));
  const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
  let buffer: Receipt[] = [];
  let ready = false;
  const client = new StockClient({ url, channel: 'storefront', WebSocket });
  client.on('deltas', (items) => {
    const now = Date.now();
    for (const it of items) buffer.push([it.sku, it.version, it.commitTs, now]);
  });
  client.on('snapshot', () => {
    if (!ready && skus.every((s) => client.get(s) !== undefined)) {
      ready = true;
      out({ type: 'ready' });
    }
  });
  client.on('error', (e) => process.stderr.write(`client error: ${e.code} ${e.message}\n`));
  client.on('state', (s) => {
    if (s !== 'open') process.stderr.write(`client state: ${s}\n`);
  });
  const flush = () => {
    if (buffer.length) out({ type: 'items', items: buffer });
    buffer = [];
  };
  const timer = setInterval(flush, 100);
  const exit = (code: number) => {
    clearInterval(timer);
    flush();
    client.close();
    setTimeout(() => process.exit(code), 100).unref();
  };
  setTimeout(() => exit(1), maxSeconds * 1000).unref();
  process.on('SIGTERM', () => exit(0));
  readline.createInterface({ input: process.stdin }).on('close', () => exit(0));
  client.subscribe(skus);
}

/** Spawns an SDK client child on `wsUrl` subscribed to `benchSku(skuPrefix, 0..rows-1)`; it exits by itself after `maxSeconds` (default 300). */
export function nodeClient(wsUrl: string, skuPrefix: string, rows: number, name = 'sdk-client', maxSeconds = 300): { source: ReceiptSource; child: Child } {
  const pending: Receipt[] = [];
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  const child = spawnNode(name, 'tools/bench/lib/sdk-client.ts', ['--url', wsUrl, '--sku-prefix', skuPrefix, '--rows', String(rows), '--max-seconds', String(maxSeconds)], {
    stdin: true,
    onStdoutLine: (line) => {
      const msg = JSON.parse(line) as { type: string; items?: Receipt[] };
      if (msg.type === 'ready') resolveReady();
      else if (msg.type === 'items' && msg.items) for (const r of msg.items) pending.push(r);
    },
  });
  return {
    child,
    source: {
      name: 'node-sdk',
      ready: Promise.race([
        ready,
        child.exited.then((c) => {
          throw new Error(`${name} exited (${String(c)}) before it was ready`);
        }),
      ]),
      async collect() {
        return pending.splice(0, pending.length);
      },
      async stop() {
        child.proc.stdin?.end();
        const done = await Promise.race([child.exited.then(() => true), sleep(3000).then(() => false)]);
        if (!done) await stopChild(child, 2000);
      },
    },
  };
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) await clientMain(process.argv.slice(2));
