/**
 * One complete gateway fuzz run against the real platform: a processor and a gateway as child
 * processes on private names, SKUs with stock, the storm (campaign-gateway.ts), then the checks
 * after it — the gateway still alive, nothing changed by refused requests, and valid requests
 * (a stock read, a WebSocket snapshot, a purchase, an adjustment) still served.
 */
import { SignJWT } from 'jose';
import pg from 'pg';
import { loadConfig } from '../../lib/config.ts';
import { createRedis } from '../../lib/redis.ts';
import { fuzzGateway, type GatewayStats } from './campaign-gateway.ts';
import type { GatewayCase, GatewayFuzzContext } from './gen-gateway.ts';
import { child, diffSnapshots, fuzzNames, seedSkus, snapshot, waitViews } from './platform.ts';
import { closeCodeOf, encodeFrame, exchange, freePort, OPCODES, parseServerFrames } from './raw-socket.ts';
import type { Violation } from './report.ts';

const JWT_SECRET = 'fuzz-secret-that-is-long-enough-0123456789';
const MAX_FRAME_BYTES = 4096;

export interface TargetRun<S> {
  stats: S;
  violations: Violation[];
}

export async function runGatewayTarget(o: {
  seed: number;
  cases: number;
  first?: number;
  deadline?: number;
  /** Storm length, counted from the end of the set-up (the children take a while to start). */
  stormMs?: number;
  kinds?: ReadonlyArray<GatewayCase['kind']>;
  lanes?: number;
  maxCrashes?: number;
  log?: (line: string) => void;
}): Promise<TargetRun<GatewayStats>> {
  const log = o.log ?? (() => undefined);
  const config = loadConfig(process.env);
  const pool = new pg.Pool({ connectionString: config.pg.url, max: 3 });
  const redis = createRedis(config.redis);
  const names = fuzzNames('gw');
  let port = await freePort();
  const processor = child('processor', names);
  const env = () => ({ GATEWAY_PORT: String(port), GATEWAY_JWT_SECRET: JWT_SECRET, GATEWAY_MAX_FRAME_BYTES: String(MAX_FRAME_BYTES), GATEWAY_MAX_INVALID_FRAMES: '3' });
  let gateway = child('gateway', names, env());
  const violations: Violation[] = [];
  // A kit of the run's first two SKUs (docs/kits.md): requests may name it like any SKU, and a
  // purchase of it reserves those two.
  const kit = `${names.id}-kit`;
  try {
    await seedSkus(pool, names);
    await pool.query(`INSERT INTO products (sku, name) VALUES ($1, 'fuzz kit') ON CONFLICT DO NOTHING`, [kit]);
    await pool.query('INSERT INTO kits (sku) VALUES ($1) ON CONFLICT DO NOTHING', [kit]);
    await pool.query('INSERT INTO kit_components (kit_sku, component_sku, quantity) VALUES ($1, $2, 1), ($1, $3, 2) ON CONFLICT DO NOTHING', [kit, names.skus[0], names.skus[1]]);
    await Promise.all([processor.start(), gateway.start()]);
    await waitViews(pool, redis, names);
    log(`gateway on port ${port} (pid ${gateway.pid}), processor pid ${processor.pid}, prefix ${names.prefix}`);
    const secret = new TextEncoder().encode(JWT_SECRET);
    const jwt = (claims: Record<string, unknown>, exp?: string) => {
      const j = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(String(claims.sub ?? 'fuzz')).setIssuedAt();
      return (exp ? j.setExpirationTime(exp) : j).sign(secret);
    };
    const ctx: GatewayFuzzContext = {
      skus: [...names.skus, kit],
      locations: names.locations,
      tokens: [
        'dev-wms-key',
        'dev-erp-key',
        'not-a-key',
        await jwt({ channels: ['wms'], sub: 'fuzz-wms' }, '1h'),
        await jwt({ channels: ['storefront'], sub: 'fuzz-customer' }, '1h'),
        await jwt({ channels: ['wms'], sub: 'fuzz-expired' }, '-1h'),
        await jwt({ channels: 'wms', sub: { a: 1 } }),
      ],
      maxFrameBytes: MAX_FRAME_BYTES,
    };
    const before = new Map<string, Awaited<ReturnType<typeof snapshot>>>();
    for (const s of names.skus) before.set(s, await snapshot(pool, redis, names, [s]));
    const gatewayRef = { current: gateway };
    const { stats, violations: found } = await fuzzGateway({
      seed: o.seed,
      cases: o.cases,
      ...(o.first !== undefined ? { first: o.first } : {}),
      ...(o.deadline !== undefined || o.stormMs !== undefined ? { deadline: Math.min(o.deadline ?? Infinity, o.stormMs !== undefined ? Date.now() + o.stormMs : Infinity) } : {}),
      ...(o.kinds ? { kinds: o.kinds } : {}),
      ...(o.lanes !== undefined ? { lanes: o.lanes } : {}),
      ...(o.maxCrashes !== undefined ? { maxCrashes: o.maxCrashes } : {}),
      ctx,
      get child() {
        return gatewayRef.current;
      },
      port: () => port,
      restart: async () => {
        port = await freePort();
        gatewayRef.current = gateway = child('gateway', names, env());
        await gateway.start();
      },
      onProgress: (n, s) => {
        if (n % 100 === 0) log(`gateway: ${n} cases, statuses ${JSON.stringify(s.byStatus)}, no answer ${s.noAnswer}, restarts ${s.restarts}`);
      },
    });
    violations.push(...found);

    // After the storm. Requests that were accepted (a mutated body that happened to be valid)
    // changed their SKUs legitimately; every other SKU must be exactly as before.
    // A request can only touch a SKU it names (confirm/cancel name random order ids, never an
    // order of the storm, whose ids the fuzzer does not know).
    // An accepted purchase also touches every SKU its answer lists (a kit's components).
    const touched = new Set(
      stats.accepted
        .filter((a) => a.route !== 'confirm' && a.route !== 'cancel' && a.sku !== undefined)
        .flatMap((a) => [a.sku!, ...names.skus.filter((s) => a.body.includes(`"${s}"`))]),
    );
    for (const sku of names.skus) {
      if (touched.has(sku)) continue;
      const diff = diffSnapshots(before.get(sku)!, await snapshot(pool, redis, names, [sku]));
      if (diff.length) {
        violations.push({ target: 'gateway', seed: o.seed, index: -1, kind: 'state', input: `${stats.cases} requests, none accepted for ${sku}`, problem: `state of ${sku} changed although every request on it was refused`, detail: diff.slice(0, 10).join('\n') });
      }
    }
    if (!gateway.alive) {
      port = await freePort();
      gateway = child('gateway', names, env());
      await gateway.start();
    }
    violations.push(...(await afterStormChecks(port, names.skus[0]!, pool, o.seed)));
    return { stats, violations };
  } finally {
    await Promise.all([gateway.stop(), processor.stop()]);
    await pool.query('DELETE FROM kits WHERE sku = $1', [kit]).catch(() => undefined);
    redis.disconnect();
    await pool.end();
  }
}

/** Valid requests after the storm: a stock read, a WebSocket snapshot, a purchase and an adjustment answer sensibly. */
async function afterStormChecks(port: number, sku: string, pool: pg.Pool, seed: number): Promise<Violation[]> {
  const out: Violation[] = [];
  const fail = (input: string, problem: string, detail?: string) => out.push({ target: 'gateway', seed, index: -1, kind: 'after-storm', input, problem, ...(detail ? { detail } : {}) });
  const truth = await pool.query<{ on_hand: string }>(`SELECT sum(on_hand) AS on_hand FROM stock_levels WHERE sku = $1`, [sku]);
  // Totals and per-location figures need a credential (anonymous reads get public availability only).
  const read = await exchange(port, [Buffer.from(`GET /v1/stock/${sku} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dev-wms-key\r\nConnection: close\r\n\r\n`)], { timeoutMs: 5000 });
  if (read.status !== 200) fail(`GET /v1/stock/${sku}`, `a valid stock read answered ${read.status ?? 'nothing'}`, read.rest.toString('utf8').slice(0, 300));
  else {
    const body = JSON.parse(read.rest.toString('utf8')) as { onHand?: number };
    if (body.onHand !== Number(truth.rows[0]!.on_hand)) fail(`GET /v1/stock/${sku}`, `the stock read says onHand ${body.onHand}, Postgres ${truth.rows[0]!.on_hand}`);
  }
  let frames: ReturnType<typeof parseServerFrames> = [];
  const upgrade = `GET /v1/stream?channel=storefront HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
  await exchange(port, [Buffer.from(upgrade)], {
    timeoutMs: 5000,
    afterHead: async (socket, r) => {
      socket.write(encodeFrame({ fin: true, rsv: 0, opcode: OPCODES.text, masked: true, payload: Buffer.from(JSON.stringify({ op: 'subscribe', skus: [sku], id: 1 })) }));
      const until = Date.now() + 4000;
      while (Date.now() < until && !r.rest.includes('"snapshot"')) await new Promise((res) => setTimeout(res, 25));
      frames = parseServerFrames(r.rest);
    },
  });
  if (!frames.some((f) => f.opcode === 1 && f.payload.includes('"snapshot"') && f.payload.includes(sku))) {
    fail(`WebSocket subscribe ${sku}`, 'a valid subscription got no snapshot', `close ${closeCodeOf(frames) ?? 'none'}; frames ${frames.map((f) => f.payload.toString('utf8').slice(0, 120)).join(' | ')}`);
  }
  const purchase = JSON.stringify({ customerId: 'fuzz-after-storm', items: [{ sku, qty: 1 }] });
  const p = await exchange(port, [Buffer.from(`POST /v1/purchases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIdempotency-Key: fz-after-${seed}-${Date.now()}\r\nContent-Length: ${purchase.length}\r\nConnection: close\r\n\r\n${purchase}`)], { timeoutMs: 10_000 });
  // With customer credentials required (issue 10) an anonymous purchase is refused: any clear answer but a 5xx will do.
  if (p.status === undefined || p.status >= 500) fail('POST /v1/purchases (valid body)', `answered ${p.status ?? 'nothing'}`, p.rest.toString('utf8').slice(0, 300));
  const adj = JSON.stringify({ adjustmentId: `fz-after-${seed}-${Date.now()}`, sku, locationId: (await pool.query<{ location_id: string }>(`SELECT location_id FROM stock_levels WHERE sku = $1 LIMIT 1`, [sku])).rows[0]!.location_id, kind: 'RECEIPT', quantity: 1, toLocationId: null, occurredAt: Date.now(), sourceSystem: 'fuzz', reference: null });
  const a = await exchange(port, [Buffer.from(`POST /v1/adjustments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dev-wms-key\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(adj)}\r\nConnection: close\r\n\r\n${adj}`)], { timeoutMs: 10_000 });
  if (a.status !== 201) fail('POST /v1/adjustments (valid RECEIPT, dev-wms-key)', `answered ${a.status ?? 'nothing'}`, a.rest.toString('utf8').slice(0, 300));
  return out;
}
