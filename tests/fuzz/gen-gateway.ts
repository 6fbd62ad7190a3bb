/**
 * Inputs for the gateway fuzzer, one case per (seed, index): raw HTTP requests (malformed request
 * lines and headers, every route with random and mutated bodies), WebSocket upgrades with random
 * URLs and headers, and WebSocket sessions of random frames (text, binary, fragmented, oversized,
 * invalid UTF-8, reserved opcodes and bits, unmasked, bad close frames).
 */
import { encodeFrame, OPCODES, type FrameSpec } from './raw-socket.ts';
import { caseRng, mutateJson, randomJson, type Rng } from './rng.ts';

export interface GatewayFuzzContext {
  /** SKUs with stock the fuzzer may name (their state is checked afterwards). */
  skus: string[];
  locations: string[];
  /** Credentials to try (valid API keys, tokens for other channels, garbage). */
  tokens: string[];
  /** Largest WebSocket frame the gateway accepts (GATEWAY_MAX_FRAME_BYTES). */
  maxFrameBytes: number;
}

export interface GatewayCase {
  index: number;
  kind: 'line' | 'headers' | 'route' | 'upgrade' | 'ws';
  /** One line describing the input, for the report. */
  label: string;
  /** What is written, in order (a request may be split over several writes). */
  chunks: Buffer[];
  /** Frames to send after a 101 (kind ws). */
  frames?: Buffer[];
  /** Set when the request could change state if the gateway accepted it. */
  mutates?: { route: string; sku?: string };
}

const CRLF = '\r\n';

function show(b: Buffer | string, max = 160): string {
  const s = typeof b === 'string' ? b : b.toString('latin1');
  const j = JSON.stringify(s.length > max ? `${s.slice(0, max)}…(${s.length} bytes)` : s);
  return j;
}

function enc(r: Rng, s: string): string {
  // Percent-encodes every byte (lone surrogates included, as U+FFFD), or only what would end the target.
  const all = () => [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('');
  return r.bool(0.5) ? all() : s.replace(/[\s?#%]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** A path parameter: a real SKU, a hostile string (raw or percent-encoded), or a broken escape. */
function param(r: Rng, ctx: GatewayFuzzContext): string {
  return r.weighted<() => string>([
    [3, () => r.pick(ctx.skus)],
    [3, () => enc(r, r.string(r.size(200)))],
    [1, () => r.pick(['%', '%Z', '%ZZ', '%00', '%C0%80', '%ED%A0%80', '%FF', '..', '%2e%2e', '%2F', '', 'a'.repeat(129), 'a'.repeat(5000)])],
    [1, () => r.pick(ctx.skus) + r.pick(['%00', '%0A', '%0D%0A', '%20', '%'])],
  ])();
}

/** A receipt id: one of a few of this run's (named after its first SKU) the storm reuses, or a hostile path parameter. */
function receiptId(r: Rng, ctx: GatewayFuzzContext): string {
  return r.weighted<() => string>([
    [4, () => `${ctx.skus[0]!.replace(/[^A-Za-z0-9-]/g, '').slice(0, 50)}-po-${r.int(0, 9)}`],
    [2, () => param(r, ctx)],
    [1, () => r.pick(['-x', 'a'.repeat(65), 'a:b', '__proto__'])],
  ])();
}

/** A sales-channel id, valid-looking or hostile (unknown, malformed, huge, encoded). */
function salesChannel(r: Rng): string {
  return r.pick([
    'web',
    'fuzz-channel',
    `c-${r.int(0, 99)}`,
    '',
    '%00',
    '%',
    'A'.repeat(r.pick([65, 5000])),
    '__proto__',
    'constructor',
    '..%2F..',
    enc(r, r.string(r.size(40))),
  ]);
}

const ROUTES: ReadonlyArray<{ name: string; method: string; path: (r: Rng, c: GatewayFuzzContext) => string; body?: (r: Rng, c: GatewayFuzzContext) => unknown; mutates?: boolean }> = [
  { name: 'stock', method: 'GET', path: (r, c) => `/v1/stock/${param(r, c)}` },
  // Sales channels (docs/channels.md): `?channel=` with hostile values, on both stock routes.
  { name: 'stock-channel', method: 'GET', path: (r, c) => `/v1/stock/${r.pick(c.skus)}?channel=${salesChannel(r)}` },
  { name: 'stock-channel', method: 'GET', path: (r, c) => `/v1/stock?skus=${r.pick(c.skus)}&${r.pick(['channel', 'channel[]', 'channel[a]'])}=${salesChannel(r)}&channel=${salesChannel(r)}` },
  {
    name: 'stock-batch',
    method: 'GET',
    path: (r, c) =>
      r.weighted<() => string>([
        [3, () => `/v1/stock?skus=${Array.from({ length: r.size(150) }, () => param(r, c)).join(r.pick([',', '%2C', ',,', ' , ']))}`],
        [1, () => `/v1/stock?skus=${param(r, c)}&skus=${param(r, c)}`],
        [1, () => `/v1/stock?skus[a]=${param(r, c)}&skus[b][c]=1`],
        [1, () => `/v1/stock?${r.pick(['', 'skus', 'skus=', '=', '&&&', 'skus=%', `skus=${'x,'.repeat(5000)}`])}`],
      ])(),
  },
  {
    name: 'purchases',
    method: 'POST',
    path: () => '/v1/purchases',
    mutates: true,
    body: (r, c) => ({
      customerId: r.pick(['fuzz-customer', r.string(r.size(140))]),
      items: [{ sku: r.pick(c.skus), qty: r.int(1, 3) }],
      ...(r.bool(0.4) ? { channel: r.pick<unknown>([salesChannel(r), null, 7, ['web'], { id: 'web' }, '']) } : {}),
    }),
  },
  { name: 'order', method: 'GET', path: (r, c) => `/v1/orders/${param(r, c)}` },
  { name: 'confirm', method: 'POST', path: (r, c) => `/v1/orders/${r.pick([param(r, c), '00000000-0000-0000-0000-000000000000', r.bytes(16).toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-')])}/confirm`, mutates: true },
  { name: 'cancel', method: 'POST', path: (r, c) => `/v1/orders/${r.pick([param(r, c), '00000000-0000-0000-0000-000000000000'])}/cancel`, mutates: true },
  {
    name: 'extend',
    method: 'POST',
    path: (r, c) => `/v1/orders/${r.pick([param(r, c), '00000000-0000-0000-0000-000000000000'])}/extend`,
    mutates: true,
    body: (r) => ({ seconds: r.pick([1, 60, 3600, 86_400, 86_401, 0, -1, 1.5, 2 ** 53]) }),
  },
  {
    name: 'change',
    method: 'PATCH',
    path: (r, c) => `/v1/orders/${r.pick([param(r, c), '00000000-0000-0000-0000-000000000000'])}`,
    mutates: true,
    body: (r, c) => ({ items: [{ sku: r.pick(c.skus), qty: r.int(0, 3) }] }),
  },
  {
    name: 'adjustments',
    method: 'POST',
    path: () => '/v1/adjustments',
    mutates: true,
    body: (r, c) => ({
      adjustmentId: `fz-${r.int(0, 1e9)}`,
      sku: r.pick(c.skus),
      locationId: r.pick(c.locations),
      kind: r.pick(['RECEIPT', 'PICK', 'COUNT', 'DAMAGE', 'RETURN', 'TRANSFER']),
      quantity: r.int(0, 5),
      toLocationId: null,
      occurredAt: Date.now(),
      sourceSystem: 'fuzz',
      reference: null,
      // Dated counts (docs/ledger.md): hostile times, on counts and on kinds that take none.
      ...(r.bool(0.3) ? { countedAt: r.pick<unknown>([Date.now() - r.int(0, 86_400_000), 0, -1, 1.5, 2 ** 53, Date.now() + 3_600_000, '2026-01-01', null]) } : {}),
    }),
  },
  // Expected receipts, receiving and backorder policies (docs/incoming.md): ids from a small set so
  // receives and updates hit receipts the storm created, plus hostile ids; bodies near-valid.
  {
    name: 'receipt',
    method: 'PUT',
    path: (r, c) => `/v1/receipts/${receiptId(r, c)}`,
    mutates: true,
    body: (r, c) => ({
      ...(r.bool(0.5) ? { reference: r.pick(['ASN-1', '', r.string(r.size(140))]) } : {}),
      lines: Array.from({ length: r.int(1, 3) }, (_, i) => ({
        line: r.pick([i + 1, 0, 10_001, 1.5]),
        sku: r.pick(c.skus),
        locationId: r.pick([...c.locations, 'fz-nowhere']),
        quantity: r.pick([1, 5, 0, -1, 1_000_000_001]),
        eta: r.pick(['2026-12-24T09:00:00Z', '2026-12-24', 'tomorrow', '1970-01-01T00:00:00Z', '2026-12-24T09:00:00+14:00']),
        ...(r.bool(0.2) ? { cancelled: r.pick<unknown>([true, false, 'yes']) } : {}),
      })),
    }),
  },
  { name: 'receipt-read', method: 'GET', path: (r, c) => `/v1/receipts/${receiptId(r, c)}` },
  {
    name: 'receive',
    method: 'POST',
    path: (r, c) => `/v1/receipts/${receiptId(r, c)}/receive`,
    mutates: true,
    body: (r) => ({ lines: [{ line: r.pick([1, 2, 3, 0, 99]), quantity: r.pick([1, 3, 0, -2, 2 ** 31]) }] }),
  },
  {
    name: 'backorder-policy',
    method: 'PUT',
    path: (r, c) => `/v1/skus/${param(r, c)}/backorder-policy`,
    mutates: true,
    body: (r) => ({ policy: r.pick(['none', 'backorder', 'preorder', 'always', '']), ...(r.bool(0.7) ? { limit: r.pick<unknown>([0, 3, -1, 1.5, null, '3', 2 ** 40]) } : {}) }),
  },
  // The movement ledger (docs/ledger.md): hostile query strings.
  {
    name: 'movements',
    method: 'GET',
    path: (r, c) =>
      `/v1/movements?${r.pick([
        `sku=${r.pick(c.skus)}`,
        `sku=${param(r, c)}`,
        `sku=${r.pick(c.skus)}&location=${r.pick(c.locations)}&limit=${r.pick(['1', '0', '1000', '1001', '-1', 'abc', '1e3', '99999999999999999999'])}`,
        `since=${r.pick(['0', '2026-01-01T00:00:00Z', 'yesterday', '-1', '9'.repeat(30), '%00'])}&until=${r.pick(['1', '2020-01-01T00:00:00Z', ''])}`,
        `after=${r.pick(['0', '-1', '1.5', 'x', '9007199254740993'])}`,
        'sku=a&sku=b',
        'sku[a]=1',
        '__proto__=1',
        `location=${'L'.repeat(5000)}`,
        '',
      ])}`,
  },
  { name: 'ticket', method: 'GET', path: (r, c) => `/v1/tickets/${param(r, c)}/${r.pick(['1', '0', '-1', '99999999999999999999', 'abc', '1e3', '%31', param(r, c)])}` },
  { name: 'ticket', method: 'GET', path: (r, c) => `/v1/tickets/${param(r, c)}/${r.pick(['0', 'abc', '1e3', '-1'])}/events` },
  { name: 'ops', method: 'GET', path: (r) => r.pick(['/healthz', '/readyz', '/metrics', '/openapi.json', '/openapi.yaml', '/', '/index.html', '/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/.env', '/healthz?x=%', '/metrics/', '//healthz']) },
];

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'CONNECT', 'PROPFIND', 'get', 'G\u0000T', 'GET GET', '', 'POST\t', 'X'.repeat(300)];

function authHeader(r: Rng, ctx: GatewayFuzzContext): string | undefined {
  return r.weighted<() => string | undefined>([
    [3, () => undefined],
    [3, () => `Bearer ${r.pick(ctx.tokens)}`],
    [1, () => `Bearer ${r.pick(['a.b.c', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', 'eyJhbGciOiJIUzI1NiJ9.e30.AAAA', '.', '..', '...'])}`],
    [1, () => `${r.pick(['Basic', 'bearer', 'Bearer', 'Token', ''])} ${r.string(r.size(64)).replace(/[\r\n]/g, '')}`],
    [1, () => `Bearer ${'A'.repeat(r.pick([8000, 20000]))}`],
  ])();
}

function headerLines(r: Rng, ctx: GatewayFuzzContext, body: Buffer | undefined, hostile: boolean): string[] {
  const h: string[] = [];
  if (!hostile || r.bool(0.8)) h.push('Host: 127.0.0.1');
  const auth = authHeader(r, ctx);
  if (auth !== undefined) h.push(`Authorization: ${auth}`);
  if (r.bool(0.7)) {
    h.push(
      `Idempotency-Key: ${r.weighted<() => string>([
        [4, () => `fz-${r.int(0, 1e12)}`],
        [2, () => r.string(r.size(200)).replace(/[\r\n]/g, '')],
        [1, () => ''],
        [1, () => 'k'.repeat(129)],
      ])()}`,
    );
  }
  if (r.bool(0.7)) h.push(`Content-Type: ${r.pick(['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/json; charset=latin1', '*/*', ''])}`);
  if (body !== undefined) {
    h.push(
      r.weighted<() => string>([
        [8, () => `Content-Length: ${body.length}`],
        [1, () => `Content-Length: ${body.length + r.int(1, 100)}`],
        [1, () => `Content-Length: ${Math.max(0, body.length - r.int(1, 100))}`],
        [1, () => 'Transfer-Encoding: chunked'],
      ])(),
    );
  }
  if (hostile) {
    const n = r.int(1, 4);
    for (let i = 0; i < n; i++) {
      h.push(
        r.weighted<() => string>([
          [2, () => `${r.string(r.size(20)).replace(/[\r\n:]/g, '')}: ${r.string(r.size(60)).replace(/[\r\n]/g, '')}`],
          [1, () => `X-Bin: ${r.bytes(r.size(40)).toString('latin1').replace(/[\r\n]/g, '')}`],
          [1, () => 'Content-Length: 5\r\nContent-Length: 7'],
          [1, () => 'Content-Length: -1'],
          [1, () => 'Content-Length: 99999999999999999999'],
          [1, () => 'Transfer-Encoding: chunked\r\nContent-Length: 3'],
          [1, () => 'Transfer-Encoding: gzip, chunked'],
          [1, () => `X-Big: ${'b'.repeat(r.pick([9000, 17000, 70000]))}`],
          [1, () => Array.from({ length: r.pick([100, 2100]) }, (_, k) => `X-H${k}: v`).join(CRLF)],
          [1, () => ' folded: continuation'],
          [1, () => 'Expect: 100-continue'],
          [1, () => `Upgrade: ${r.pick(['h2c', 'websocket', 'WebSocket', 'foo'])}\r\nConnection: Upgrade`],
          [1, () => `Cookie: ${r.string(r.size(100)).replace(/[\r\n]/g, '')}`],
          [1, () => 'Host: a\r\nHost: b'],
          [1, () => 'X-Forwarded-For: 1.2.3.4, ::1, [::1]:80, garbage'],
          [1, () => 'Accept-Encoding: gzip, br, deflate;q=1e999'],
          [1, () => 'Range: bytes=0-1,2-3,4-5,-1'],
          [1, () => 'X-Null: a\u0000b'],
          [1, () => 'NoColon'],
          [1, () => ': empty-name'],
        ])(),
      );
    }
  }
  return h;
}

function chunked(r: Rng, body: Buffer): Buffer {
  if (r.bool(0.7)) return Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
  return Buffer.from(r.pick([`zz\r\n${body.toString('latin1')}\r\n0\r\n\r\n`, `ffffffffffffffff\r\nabc\r\n0\r\n\r\n`, `5\r\nab\r\n0\r\n\r\n`, `-1\r\n\r\n`, `3;ext=${'e'.repeat(5000)}\r\nabc\r\n0\r\n\r\n`, `0\r\nTrailer: x\r\n\r\n`, `1\r\nx\r\n`]), 'latin1');
}

function bodyFor(r: Rng, route: (typeof ROUTES)[number], ctx: GatewayFuzzContext): Buffer | undefined {
  if (!route.body && r.bool(0.7)) return undefined;
  return r.weighted<() => Buffer>([
    [4, () => Buffer.from(JSON.stringify(mutateJson(r, route.body ? route.body(r, ctx) : {})) ?? 'null')],
    [2, () => Buffer.from(JSON.stringify(randomJson(r)) ?? 'null')],
    [1, () => {
      const t = JSON.stringify(route.body ? route.body(r, ctx) : randomJson(r)) ?? '{}';
      return Buffer.from(t.slice(0, r.int(0, t.length)));
    }],
    [1, () => r.bytes(r.size(4096))],
    [1, () => Buffer.from(r.pick(['', 'null', '[]', '{}', '"x"', '1', '{"a":1}{"b":2}', '{"__proto__":{"polluted":1}}', '[' .repeat(5000), '{"a":' .repeat(3000)]))],
    [1, () => Buffer.alloc(r.pick([16 * 1024 + 1, 100_000, 1_100_000]), 0x20)],
    [1, () => Buffer.from(JSON.stringify({ ...(route.body?.(r, ctx) as object), customerId: `fz\u0000${r.int(0, 99)}` }))],
  ])();
}

function httpRequest(r: Rng, ctx: GatewayFuzzContext, hostileHeaders: boolean): GatewayCase {
  const route = r.pick(ROUTES);
  const method = r.bool(0.85) ? route.method : r.pick(METHODS.slice(0, 9));
  const target = route.path(r, ctx);
  const body = bodyFor(r, route, ctx);
  const headers = headerLines(r, ctx, body, hostileHeaders);
  const isChunked = headers.some((h) => /^Transfer-Encoding: chunked/i.test(h));
  const payload = body === undefined ? Buffer.alloc(0) : isChunked ? chunked(r, body) : body;
  const head = Buffer.from(`${method} ${target} HTTP/1.1${CRLF}${headers.join(CRLF)}${CRLF}${CRLF}`, 'utf8');
  const whole = Buffer.concat([head, payload]);
  // Sometimes dribble the request out in pieces (parsers must not care where a write ends).
  const chunks = r.bool(0.15) ? splitRandomly(r, whole) : [whole];
  const sku = ctx.skus.find((s) => whole.includes(s));
  return {
    index: 0,
    kind: hostileHeaders ? 'headers' : 'route',
    label: `${show(`${method} ${target}`, 120)} headers=${show(headers.join(' | '), 200)} body=${body === undefined ? 'none' : show(body, 160)}`,
    chunks,
    ...(route.mutates ? { mutates: { route: route.name, ...(sku ? { sku } : {}) } } : {}),
  };
}

function splitRandomly(r: Rng, b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < b.length) {
    const n = Math.min(b.length - i, r.int(1, 64));
    out.push(b.subarray(i, i + n));
    i += n;
  }
  return out.length > 200 ? [b] : out;
}

function requestLine(r: Rng): GatewayCase {
  const method = r.pick(METHODS);
  const target = r.weighted<() => string>([
    [2, () => r.pick(['http://[', 'http://[::1', 'http://[::1]:99999/', 'http://a:b@[/', '//', '*', '', ' ', '/%', '/%%', 'http://', 'http:///', 'https://example.com/v1/stock/x', 'http://127.0.0.1:1/v1/stream', 'file:///etc/passwd', '\\\\server\\share', 'ws://[/v1/stream', '/v1/stream?channel=%', '/v1/stream?%zz', '/v1/stream#frag', '?', '#'])],
    [2, () => `/${r.string(r.size(300))}`],
    [1, () => `/${r.bytes(r.size(300)).toString('latin1')}`],
    [1, () => `/${'a'.repeat(r.pick([9000, 70000, 200000]))}`],
    [1, () => `/v1/stock/x\r\nX-Injected: 1`],
  ])();
  const version = r.pick(['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/9.9', 'HTTP/1.1\u0000', 'http/1.1', 'HTTP/1.1 extra', '', 'HTTP/']);
  const eol = r.pick([CRLF, CRLF, CRLF, '\n', '\r', '\r\r\n']);
  const upgrade = r.bool(0.4) ? `Upgrade: websocket${eol}Connection: Upgrade${eol}Sec-WebSocket-Version: 13${eol}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==${eol}` : '';
  const text = `${method} ${target} ${version}${eol}Host: 127.0.0.1${eol}${upgrade}${eol}`;
  return { index: 0, kind: 'line', label: show(text, 240), chunks: [Buffer.from(text, 'latin1')] };
}

function upgradeHeaders(r: Rng, ctx: GatewayFuzzContext, valid: boolean): string[] {
  const h = ['Host: 127.0.0.1'];
  const add = (good: string, bad: () => string) => {
    if (valid || r.bool(0.7)) h.push(good);
    else {
      const b = bad();
      if (b) h.push(b);
    }
  };
  add('Upgrade: websocket', () => r.pick(['Upgrade: websocket, h2c', 'Upgrade: ', 'Upgrade: WEBSOCKET', 'Upgrade: websocket\u0000', '']));
  add('Connection: Upgrade', () => r.pick(['Connection: keep-alive, Upgrade', 'Connection: close', 'Connection: upgrade, upgrade', '']));
  add('Sec-WebSocket-Version: 13', () => r.pick(['Sec-WebSocket-Version: 8', 'Sec-WebSocket-Version: 13, 8', 'Sec-WebSocket-Version: abc', 'Sec-WebSocket-Version: 99999999999', '']));
  add('Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', () => r.pick(['Sec-WebSocket-Key: short', 'Sec-WebSocket-Key: ', `Sec-WebSocket-Key: ${'A'.repeat(5000)}`, 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: b3RoZXIgbm9uY2UgaGVyZQ==', '']));
  if (r.bool(0.3)) h.push(`Sec-WebSocket-Extensions: ${r.pick(['permessage-deflate', 'permessage-deflate; client_max_window_bits=0', 'x-webkit-deflate-frame', 'permessage-deflate; server_max_window_bits=99', r.string(30).replace(/[\r\n]/g, '')])}`);
  if (r.bool(0.2)) h.push(`Sec-WebSocket-Protocol: ${r.string(r.size(40)).replace(/[\r\n]/g, '')}`);
  if (r.bool(0.2)) h.push(`Origin: ${r.pick(['null', 'http://evil.example', r.string(20).replace(/[\r\n]/g, '')])}`);
  const auth = authHeader(r, ctx);
  if (auth !== undefined && r.bool(0.5)) h.push(`Authorization: ${auth}`);
  return h;
}

function streamUrl(r: Rng, ctx: GatewayFuzzContext, valid: boolean): string {
  if (valid) {
    const channel = r.weighted<() => string>([
      [6, () => 'storefront'],
      [1, () => 'wms'],
      [1, () => 'erp'],
    ])();
    const token = channel === 'storefront' ? '' : `&token=${encodeURIComponent(r.pick(ctx.tokens))}`;
    return `/v1/stream?channel=${channel}${token}`;
  }
  return r.weighted<() => string>([
    [3, () => `/v1/stream?${r.pick(['channel', 'token', 'x', 'sales_channel'])}=${enc(r, r.string(r.size(100)))}`],
    [1, () => `/v1/stream?${r.pick(['', 'channel=wms&', 'channel=storefront&'])}sales_channel=${salesChannel(r)}`],
    [2, () => r.pick(['http://[', 'http://[/v1/stream', '//[', '/v1/stream?channel=%', '/v1/stream?token=%E0%A4%A', '/v1/stream/', '/V1/STREAM', '/v1/stream?channel=wms&channel=erp', '/v1/stream?channel=__proto__', `/v1/stream?token=${'t'.repeat(10000)}`, '/v1/stream%00', '*', '', 'ws://127.0.0.1/v1/stream', 'http://127.0.0.1:1/v1/stream'])],
    [1, () => `/${r.string(r.size(100))}`],
  ])();
}

function upgrade(r: Rng, ctx: GatewayFuzzContext): GatewayCase {
  const url = streamUrl(r, ctx, false);
  const headers = upgradeHeaders(r, ctx, r.bool(0.5));
  const text = `GET ${url} HTTP/1.1${CRLF}${headers.join(CRLF)}${CRLF}${CRLF}`;
  return { index: 0, kind: 'upgrade', label: show(text, 240), chunks: [Buffer.from(text, 'utf8')] };
}

const INVALID_UTF8 = [Buffer.from([0xff]), Buffer.from([0xc0, 0x80]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf4, 0x90, 0x80, 0x80]), Buffer.from([0xe2, 0x82]), Buffer.from([0x80])];

function clientFrameJson(r: Rng, ctx: GatewayFuzzContext): unknown {
  const base = r.weighted<() => unknown>([
    [3, () => ({ op: 'subscribe', skus: Array.from({ length: r.int(1, 4) }, () => r.pick(ctx.skus)), id: r.int(0, 1e6) })],
    [1, () => ({ op: 'subscribe', skus: r.pick(ctx.skus.slice(0, 1)), since: r.pick(['0-0', '1-0', `${Date.now()}-0`, '99999999999999999999-0', '18446744073709551615-18446744073709551615', '9'.repeat(400) + '-0', '-1', 'x']) })],
    [1, () => ({ op: 'subscribe', skus: '*', since: r.pick(['0-0', '1-1']) })],
    [1, () => ({ op: 'unsubscribe', skus: r.pick(['*', [r.pick(ctx.skus)]]) })],
    [1, () => ({ op: 'ping', id: r.pick([1, 'x', 'y'.repeat(100), null, {}, 1e308]) })],
    [1, () => ({ op: 'subscribe', skus: Array.from({ length: r.pick([1001, 5000]) }, (_, i) => `fz-many-${i}`) })],
  ])();
  return r.bool(0.5) ? mutateJson(r, base) : base;
}

function wsFrames(r: Rng, ctx: GatewayFuzzContext): { frames: FrameSpec[]; label: string } {
  const specs: FrameSpec[] = [];
  const labels: string[] = [];
  const n = r.int(1, 8);
  for (let i = 0; i < n; i++) {
    const kind = r.weighted<() => string>([
      [5, () => 'json'],
      [2, () => 'text'],
      [1, () => 'binary'],
      [2, () => 'fragmented'],
      [1, () => 'oversized'],
      [1, () => 'lying-length'],
      [2, () => 'bad-utf8'],
      [1, () => 'bad-opcode'],
      [1, () => 'rsv'],
      [1, () => 'unmasked'],
      [1, () => 'control'],
      [1, () => 'close'],
      [1, () => 'orphan-continuation'],
    ])();
    labels.push(kind);
    const text = (s: unknown) => Buffer.from(typeof s === 'string' ? s : JSON.stringify(s) ?? 'null', 'utf8');
    const frame = (opcode: number, payload: Buffer, extra: Partial<FrameSpec> = {}): FrameSpec => ({ fin: true, rsv: 0, opcode, masked: true, payload, ...extra });
    switch (kind) {
      case 'json':
        specs.push(frame(OPCODES.text, text(clientFrameJson(r, ctx))));
        break;
      case 'text':
        specs.push(frame(OPCODES.text, text(r.pick([r.string(r.size(300)), '', '{', 'null', '[]', '"subscribe"', '{"op":"subscribe","skus":' + '['.repeat(3000)]))));
        break;
      case 'binary':
        specs.push(frame(OPCODES.binary, r.bool() ? r.bytes(r.size(2000)) : text(clientFrameJson(r, ctx))));
        break;
      case 'fragmented': {
        const whole = text(clientFrameJson(r, ctx));
        const cut = r.int(0, whole.length);
        specs.push(frame(OPCODES.text, whole.subarray(0, cut), { fin: false }));
        if (r.bool(0.3)) specs.push(frame(OPCODES.ping, Buffer.from('p')));
        if (r.bool(0.2)) specs.push(frame(OPCODES.text, text('interleaved'), { fin: r.bool() }));
        if (r.bool(0.85)) specs.push(frame(OPCODES.continuation, whole.subarray(cut), { fin: r.bool(0.9) }));
        break;
      }
      case 'oversized':
        specs.push(frame(r.pick([OPCODES.text, OPCODES.binary]), Buffer.alloc(ctx.maxFrameBytes + r.int(1, 5000), 0x61)));
        break;
      case 'lying-length':
        specs.push(frame(OPCODES.text, text('{"op":"ping"}'), { declaredLength: r.pick([2 ** 31, 2 ** 53 - 1, 70_000, 0, 3]) }));
        break;
      case 'bad-utf8': {
        const good = text(clientFrameJson(r, ctx));
        const at = r.int(0, good.length);
        specs.push(frame(OPCODES.text, Buffer.concat([good.subarray(0, at), r.pick(INVALID_UTF8), good.subarray(at)])));
        break;
      }
      case 'bad-opcode':
        specs.push(frame(r.pick([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), r.bytes(r.size(50))));
        break;
      case 'rsv':
        specs.push(frame(OPCODES.text, text('{"op":"ping"}'), { rsv: r.int(1, 7) }));
        break;
      case 'unmasked':
        specs.push(frame(OPCODES.text, text('{"op":"ping"}'), { masked: false }));
        break;
      case 'control':
        specs.push(frame(r.pick([OPCODES.ping, OPCODES.pong]), r.bytes(r.pick([0, 125, 126, 200])), { fin: r.bool(0.8) }));
        break;
      case 'close': {
        const code = Buffer.alloc(2);
        code.writeUInt16BE(r.pick([0, 999, 1000, 1004, 1005, 1006, 1015, 2999, 4000, 4999, 5000, 65535]));
        specs.push(frame(OPCODES.close, r.pick([Buffer.alloc(0), Buffer.from([0x03]), code, Buffer.concat([code, r.pick(INVALID_UTF8)]), Buffer.concat([code, Buffer.alloc(124, 0x61)])])));
        break;
      }
      case 'orphan-continuation':
        specs.push(frame(OPCODES.continuation, text('{"op":"ping"}')));
        break;
    }
  }
  return { frames: specs, label: labels.join(',') };
}

function wsSession(r: Rng, ctx: GatewayFuzzContext): GatewayCase {
  const url = streamUrl(r, ctx, true);
  const headers = upgradeHeaders(r, ctx, true);
  const { frames, label } = wsFrames(r, ctx);
  const text = `GET ${url} HTTP/1.1${CRLF}${headers.join(CRLF)}${CRLF}${CRLF}`;
  return {
    index: 0,
    kind: 'ws',
    label: `${show(url, 120)} frames=[${label}] first=${show(frames[0]!.payload, 120)}`,
    chunks: [Buffer.from(text, 'utf8')],
    frames: frames.map(encodeFrame),
  };
}

/** Case `index` of the run with `seed`. */
export function gatewayCase(seed: number, index: number, ctx: GatewayFuzzContext): GatewayCase {
  const r = caseRng(seed, index);
  const c = r.weighted<() => GatewayCase>([
    [3, () => requestLine(r)],
    [3, () => httpRequest(r, ctx, true)],
    [6, () => httpRequest(r, ctx, false)],
    [2, () => upgrade(r, ctx)],
    [4, () => wsSession(r, ctx)],
  ])();
  return { ...c, index };
}
