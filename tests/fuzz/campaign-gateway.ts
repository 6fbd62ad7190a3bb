/**
 * The gateway campaign: sends cases from gen-gateway.ts, one at a time, to a gateway running as a
 * child process, and checks after each one that the gateway is alive and answered no 5xx (and no
 * WebSocket 1011 / internal_error). A crash is recorded with the input that caused it and the
 * child's last log lines, and the gateway is restarted so the run continues.
 */
import type { Child } from './children.ts';
import { gatewayCase, type GatewayCase, type GatewayFuzzContext } from './gen-gateway.ts';
import { closeCodeOf, exchange, parseServerFrames, type RawReply } from './raw-socket.ts';
import type { Violation } from './report.ts';

export interface GatewayRunOptions {
  seed: number;
  /** Run cases [first, first + cases) (or until `deadline`). */
  first?: number;
  cases: number;
  deadline?: number;
  ctx: GatewayFuzzContext;
  child: Child;
  port: () => number;
  /** Restarts the child after a crash; resolves once it serves again. */
  restart: () => Promise<void>;
  onProgress?: (done: number, stats: GatewayStats) => void;
  /** Cases sent at once (default 4); a crash names every case in flight as a suspect. */
  lanes?: number;
  /** Stop after this many crashes (default: restart and go on). */
  maxCrashes?: number;
  /** Only cases whose kind is listed (default all). */
  kinds?: ReadonlyArray<GatewayCase['kind']>;
}

export interface GatewayStats {
  cases: number;
  byKind: Record<string, number>;
  byStatus: Record<string, number>;
  /** Requests that got no answer before the per-case timeout (incomplete input, SSE streams). */
  noAnswer: number;
  wsCloseCodes: Record<string, number>;
  /** 2xx answers on routes that change state (a mutated body that happened to be valid). */
  accepted: Array<{ index: number; route: string; sku: string | undefined; status: number; body: string }>;
  restarts: number;
}

async function healthy(port: number): Promise<boolean> {
  const r = await exchange(port, [Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')], { timeoutMs: 5000 });
  return r.status === 200;
}

async function runCase(c: GatewayCase, port: number): Promise<{ reply: RawReply; serverFrames: ReturnType<typeof parseServerFrames> }> {
  if (c.kind !== 'ws') {
    // A request that may change state gets time to finish (a purchase waits for its write-back).
    const reply = await exchange(port, c.chunks, { timeoutMs: c.mutates ? 5000 : 600, halfClose: true });
    return { reply, serverFrames: [] };
  }
  let frames: ReturnType<typeof parseServerFrames> = [];
  const reply = await exchange(port, c.chunks, {
    timeoutMs: 4000,
    afterHead: async (socket, r) => {
      for (const f of c.frames ?? []) {
        if (socket.destroyed) break;
        socket.write(f);
        await new Promise((res) => setTimeout(res, 5));
      }
      // Give the gateway a moment to answer the last frame (or close).
      const until = Date.now() + 150;
      while (Date.now() < until && !socket.destroyed && !r.closed) await new Promise((res) => setTimeout(res, 20));
      frames = parseServerFrames(r.rest);
    },
  });
  return { reply, serverFrames: frames };
}

export async function fuzzGateway(o: GatewayRunOptions): Promise<{ stats: GatewayStats; violations: Violation[] }> {
  const stats: GatewayStats = { cases: 0, byKind: {}, byStatus: {}, noAnswer: 0, wsCloseCodes: {}, accepted: [], restarts: 0 };
  const violations: Violation[] = [];
  const first = o.first ?? 0;
  const lanes = o.lanes ?? 4;
  const violation = (c: GatewayCase, problem: string, detail?: string) =>
    violations.push({ target: 'gateway', seed: o.seed, index: c.index, kind: c.kind, input: c.label, problem, ...(detail ? { detail } : {}) });
  const inFlight = new Map<number, GatewayCase>();
  const recent: Array<{ c: GatewayCase; at: number }> = [];
  let next = first;
  let restarting: Promise<void> | undefined;
  let stop = false;

  // A crash: every case in flight when the child died (and those answered just before) is a suspect.
  const onCrash = async () => {
    const exit = o.child.crashes[o.child.crashes.length - 1];
    const now = Date.now();
    const suspects = [...inFlight.values(), ...recent.filter((r) => now - r.at < 2000).map((r) => r.c)];
    const detail = exit?.tail.slice(-10).join('\n');
    const problem = `gateway exited (code ${exit?.code}, signal ${exit?.signal})`;
    if (suspects.length === 0) violations.push({ target: 'gateway', seed: o.seed, index: -1, kind: 'crash', input: '(no case in flight)', problem, ...(detail ? { detail } : {}) });
    // One finding per crash, naming every suspect (each can be rerun alone with --case).
    const unique = [...new Map(suspects.map((x) => [x.index, x])).values()].sort((a, b) => a.index - b.index);
    if (unique.length > 0) {
      violations.push({
        target: 'gateway',
        seed: o.seed,
        index: unique[0]!.index,
        kind: 'crash',
        input: unique.map((x) => `\n    case ${x.index} (${x.kind}): ${x.label}`).join(''),
        problem: `${problem} with ${unique.length} case(s) in flight`,
        ...(detail ? { detail } : {}),
      });
    }
    if (o.maxCrashes !== undefined && o.child.crashes.length >= o.maxCrashes) {
      stop = true;
      return;
    }
    await o.restart();
    stats.restarts++;
  };

  const lane = async () => {
    for (;;) {
      if (restarting) await restarting;
      if (stop || next >= first + o.cases || (o.deadline !== undefined && Date.now() > o.deadline)) return;
      const i = next++;
      const c = gatewayCase(o.seed, i, o.ctx);
      if (o.kinds && !o.kinds.includes(c.kind)) continue;
      stats.cases++;
      stats.byKind[c.kind] = (stats.byKind[c.kind] ?? 0) + 1;
      inFlight.set(i, c);
      const { reply, serverFrames } = await runCase(c, o.port());
      inFlight.delete(i);
      recent.push({ c, at: Date.now() });
      if (recent.length > 32) recent.shift();
      if (reply.status !== undefined) stats.byStatus[reply.status] = (stats.byStatus[reply.status] ?? 0) + 1;
      else stats.noAnswer++;
      if (reply.status !== undefined && reply.status >= 500) {
        violation(c, `answered ${reply.status} to a client error`, `${reply.head.split('\r\n')[0]} ${reply.rest.subarray(0, 300).toString('utf8')}`);
      }
      if (c.kind === 'ws') {
        const code = closeCodeOf(serverFrames);
        if (code !== undefined) stats.wsCloseCodes[code] = (stats.wsCloseCodes[code] ?? 0) + 1;
        if (code === 1011) violation(c, 'closed the WebSocket with 1011 (internal error)');
        const internal = serverFrames.find((f) => f.opcode === 1 && f.payload.includes('"internal_error"'));
        if (internal) violation(c, 'sent an internal_error frame', internal.payload.subarray(0, 300).toString('utf8'));
      }
      // Accepted, or no answer at all (the outcome is unknown): its SKU is no longer "refused only".
      if (c.mutates && (reply.status === undefined || (reply.status >= 200 && reply.status < 300))) {
        stats.accepted.push({ index: c.index, route: c.mutates.route, sku: c.mutates.sku, status: reply.status ?? 0, body: reply.rest.subarray(0, 2000).toString('utf8') });
      }
      if (!restarting && o.child.alive && i % 25 === 0 && !(await healthy(o.port()))) {
        if (o.child.alive) violation(c, 'gateway stopped answering /healthz (alive but unresponsive)');
      }
      if (!restarting && !o.child.alive) {
        restarting = onCrash().finally(() => {
          restarting = undefined;
        });
      }
      o.onProgress?.(stats.cases, stats);
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  if (restarting) await restarting;
  // The last cases' crash may not have shown yet: a moment, then look again.
  await new Promise((res) => setTimeout(res, 1000));
  if (!stop && !o.child.alive) {
    await onCrash();
  }
  return { stats, violations };
}
