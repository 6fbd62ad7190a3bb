// Storefront demo page: a live grid of SKUs fed by the gateway's WebSocket stream (channel
// `storefront`) through the browser build of the SDK. Plain browser JS, no build step.
//
// Query parameters: `?skus=A,B,C` shows those SKUs; `?count=N` the first N demo SKUs
// (SKU-000001 ...); default: the first 48.
//
// Each card has a Buy button: one unit, POST /v1/purchases as this browser's customer (a
// customerId kept in localStorage, sent as X-Customer-Id), a fresh Idempotency-Key per click (reused only to retry that
// click's request after a network error, 503 or 409 idempotency_in_progress). The outcome shows
// on the card for a few seconds; the number itself only changes when the purchase comes back
// through the feed (Postgres -> CDC -> processor -> here). A card with nothing available has its
// button disabled.
//
// A hot SKU's purchase may be waitlisted (202, the waiting room): the card shows
// `waitlisted · ticket N` and keeps its button disabled while the page listens for the ticket's
// fate by polling the `fate` URL the answer names, then shows the fate like a direct answer
// (reserved · order … / sold out).
//
// Credentials: the demo page has none. It buys through the development anonymous mode
// (PURCHASE_ALLOW_ANONYMOUS=1, the default outside production): the gateway records the customer
// as `anon:<customerId>`, a namespace no real customer can be in, and shows this browser's tickets
// only to requests naming the same X-Customer-Id. With anonymous purchases off, Buy answers 401
// (shown on the card): a real storefront buys through its backend (scope purchase:act-for) or
// with the customer's own token (docs/security.md#credentials-who-may-do-what). EventSource cannot send headers,
// so a waitlisted ticket's fate is polled (`fate`) with the X-Customer-Id header.
//
// Test hooks: every cell has `data-sku`, its values `data-testid="available" | "version" | "lag"`,
// its button `data-testid="buy"` and the last outcome `data-testid="buy-status"` (with
// `data-outcome` = pending | waitlisted | reserved | sold_out | rate_limited | error);
// `document.body.dataset.state` mirrors the client state; `window.__stock` is a plain object
// sku -> latest item the page holds; `window.__client` is the StockClient; `window.__customerId`
// is the customer the page buys as; `window.__purchases` lists every Buy click's outcome
// ({sku, idempotencyKey, status, error?, orderId?, message}; a waitlisted click has status 202 and
// `ticket`, and gets `fate` = {status, error?, orderId?, message} once decided).
import { StockClient } from '/sdk.js';

const DEFAULT_COUNT = 48;
const MAX_SKUS = 1000; // the gateway's default maxSubscriptions
const LAG_WINDOW = 1000; // p50 over the last N live changes
const STATS_EVERY_MS = 250;
const OUTCOME_SHOWN_MS = 5000; // how long a purchase outcome stays on its card
const PURCHASE_ATTEMPTS = 3; // one click: the first request and up to two retries with the same key
const CUSTOMER_KEY = 'invsync.customerId';
const FATE_POLL_MS = 2000; // polling a waitlisted ticket when its event stream is unavailable
const FATE_POLL_FAILURES = 5; // consecutive failed polls before the page gives up on a ticket

/** @returns {string[]} */
function skusFromQuery(search) {
  const params = new URLSearchParams(search);
  const list = params.get('skus');
  if (list !== null && list.trim() !== '') {
    return [...new Set(list.split(',').map((s) => s.trim()).filter(Boolean))].slice(0, MAX_SKUS);
  }
  const raw = Number.parseInt(params.get('count') ?? '', 10);
  const count = Number.isFinite(raw) && raw > 0 ? Math.min(raw, MAX_SKUS) : DEFAULT_COUNT;
  return Array.from({ length: count }, (_, i) => `SKU-${String(i + 1).padStart(6, '0')}`);
}

const skus = skusFromQuery(location.search);

// ---------------------------------------------------------------------------------------------
// the grid

const grid = /** @type {HTMLElement} */ (document.getElementById('grid'));
const stateEl = /** @type {HTMLElement} */ (document.querySelector('[data-testid="state"]'));
const p50El = /** @type {HTMLElement} */ (document.querySelector('[data-testid="lag-p50"]'));
const maxEl = /** @type {HTMLElement} */ (document.querySelector('[data-testid="lag-max"]'));
const changesEl = /** @type {HTMLElement} */ (document.querySelector('[data-testid="changes"]'));
const skuCountEl = /** @type {HTMLElement} */ (document.querySelector('[data-testid="sku-count"]'));
const noticeEl = /** @type {HTMLElement} */ (document.querySelector('[data-testid="notice"]'));

/**
 * @typedef {{ root: HTMLElement, available: HTMLElement, version: HTMLElement, lag: HTMLElement,
 *   buy: HTMLButtonElement, status: HTMLElement, busy: boolean, soldOut: boolean,
 *   statusTimer: number | undefined }} Cell
 */
/** @type {Map<string, Cell>} */
const cells = new Map();

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') node.textContent = v;
    else if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function buildCell(sku) {
  const available = el('div', { class: 'available', 'data-testid': 'available', text: '—' });
  const version = el('dd', { class: 'num', 'data-testid': 'version', text: '—' });
  const lag = el('span', { class: 'num', 'data-testid': 'lag', text: '—' });
  const buy = /** @type {HTMLButtonElement} */ (el('button', { type: 'button', class: 'buy', 'data-testid': 'buy', 'aria-label': `Buy one ${sku}`, text: 'Buy' }));
  buy.disabled = true; // until the SKU's availability is known
  const status = el('p', { class: 'buy-status', 'data-testid': 'buy-status', role: 'status', 'aria-live': 'polite' });
  const root = el('article', { class: 'cell', 'data-sku': sku, 'data-level': 'pending' }, [
    el('div', { class: 'sku', title: sku, text: sku }),
    available,
    el('div', { class: 'label', text: 'available' }),
    el('dl', { class: 'meta' }, [
      el('div', {}, [el('dt', { text: 'v' }), version]),
      el('div', { title: 'Postgres commit → this browser, for the last live change' }, [el('dt', { text: 'lag' }), lag, el('small', { class: 'unit', text: ' ms' })]),
    ]),
    el('div', { class: 'buy-row' }, [buy, status]),
  ]);
  /** @type {Cell} */
  const cell = { root, available, version, lag, buy, status, busy: false, soldOut: false, statusTimer: undefined };
  buy.addEventListener('click', () => void purchase(sku, cell));
  return cell;
}

const fragment = document.createDocumentFragment();
for (const sku of skus) {
  const cell = buildCell(sku);
  cells.set(sku, cell);
  fragment.append(cell.root);
}
grid.append(fragment);
skuCountEl.textContent = String(skus.length);

// ---------------------------------------------------------------------------------------------
// state the page holds

/** sku -> latest item (test hook). */
const stock = Object.create(null);
window.__stock = stock;

/** Lag of the live changes (deltas), ms: ring buffer for the p50, running max. */
const lags = new Float64Array(LAG_WINDOW);
let lagCount = 0;
let lagMax = -Infinity;
let changes = 0;

/** Items received but not yet drawn, drawn once per animation frame. */
/** @type {Map<string, { item: any, lag: number | undefined }>} */
const pending = new Map();
let drawScheduled = false;

const reducedMotion = window.matchMedia?.('(prefers-reduced-motion: reduce)').matches ?? false;

function scheduleDraw() {
  if (drawScheduled) return;
  drawScheduled = true;
  // rAF does not run in hidden tabs: draw on a timer there so the DOM stays current.
  if (document.hidden) setTimeout(draw, 100);
  else requestAnimationFrame(draw);
}

function level(available) {
  if (available <= 0) return 'out';
  if (available <= 5) return 'low';
  return 'ok';
}

function flash(root, previous, next) {
  if (reducedMotion || previous === undefined || typeof root.animate !== 'function') return;
  for (const running of root.getAnimations?.() ?? []) running.cancel();
  const color = next > previous ? 'rgba(31, 157, 85, 0.35)' : next < previous ? 'rgba(208, 52, 44, 0.32)' : 'rgba(47, 111, 237, 0.28)';
  root.animate(
    [
      { boxShadow: `inset 0 0 0 999px ${color}`, transform: 'scale(1.03)' },
      { boxShadow: 'inset 0 0 0 999px rgba(0, 0, 0, 0)', transform: 'scale(1)' },
    ],
    { duration: 700, easing: 'ease-out' },
  );
}

/** Above this many changed cells in one frame, skip the highlight: animating them all would
 * saturate the page's main thread and delay the numbers themselves. */
const MAX_FLASHES_PER_FRAME = 12;

function draw() {
  drawScheduled = false;
  const animate = pending.size <= MAX_FLASHES_PER_FRAME;
  for (const [sku, { item, lag }] of pending) {
    const cell = cells.get(sku);
    if (!cell) continue;
    const previous = cell.root.dataset.available === undefined ? undefined : Number(cell.root.dataset.available);
    cell.available.textContent = String(item.available);
    cell.version.textContent = String(item.version);
    if (lag !== undefined) {
      cell.lag.textContent = String(lag);
      cell.lag.title = `committed ${new Date(item.commitTs).toLocaleTimeString()}`;
    } else {
      cell.lag.textContent = '—';
      cell.lag.title = `from the snapshot; last change committed ${new Date(item.commitTs).toLocaleString()}`;
    }
    cell.root.dataset.available = String(item.available);
    if (lag !== undefined) cell.root.dataset.live = '1';
    else delete cell.root.dataset.live;
    cell.root.dataset.level = level(item.available);
    // A new state of the SKU supersedes a sold-out answer the gate gave before it.
    cell.soldOut = false;
    updateBuy(cell);
    // Highlight live changes, and values a later snapshot (after a reconnect) changed.
    if (animate && (lag !== undefined || (previous !== undefined && previous !== item.available))) flash(cell.root, previous, item.available);
  }
  pending.clear();
}

function markUnknown(list) {
  for (const sku of list) {
    const cell = cells.get(sku);
    if (!cell || stock[sku]) continue;
    cell.root.dataset.level = 'unknown';
    cell.available.textContent = '—';
    updateBuy(cell);
  }
}

function recordLag(lag) {
  lags[lagCount % LAG_WINDOW] = lag;
  lagCount += 1;
  if (lag > lagMax) lagMax = lag;
}

function renderStats() {
  const n = Math.min(lagCount, LAG_WINDOW);
  if (n > 0) {
    const sorted = lags.slice(0, n).sort();
    p50El.textContent = String(Math.round(sorted[Math.floor((n - 1) / 2)]));
    maxEl.textContent = String(Math.round(lagMax));
  }
  changesEl.textContent = String(changes);
}
setInterval(renderStats, STATS_EVERY_MS);

function setState(state) {
  document.body.dataset.state = state;
  stateEl.textContent = state;
}

function showNotice(text) {
  noticeEl.textContent = text;
  noticeEl.hidden = false;
}

// ---------------------------------------------------------------------------------------------
// buying

/** A random UUID; crypto.randomUUID needs a secure context (not plain http on a LAN address). */
function uuid() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** This browser's customer: created once, kept in localStorage (per page load without storage). */
function customerId() {
  try {
    const stored = localStorage.getItem(CUSTOMER_KEY);
    if (stored) return stored;
    const id = `web-${uuid()}`;
    localStorage.setItem(CUSTOMER_KEY, id);
    return id;
  } catch {
    return `web-${uuid()}`;
  }
}

const customer = customerId();
window.__customerId = customer;
const customerEl = document.querySelector('[data-testid="customer-id"]');
if (customerEl) customerEl.textContent = customer;
/** Every Buy click's outcome (test hook). */
const purchases = [];
window.__purchases = purchases;

/** The button is usable when the SKU is known to have units, no purchase of it is running, and
 * the gate did not just answer sold out. */
function updateBuy(cell) {
  const item = stock[cell.root.dataset.sku ?? ''];
  const available = item ? item.available : 0;
  cell.buy.disabled = cell.busy || cell.soldOut || !(available > 0);
  cell.buy.title = !item ? 'no stock known' : available > 0 ? '' : 'sold out';
}

function showOutcome(cell, outcome, text) {
  clearTimeout(cell.statusTimer);
  cell.status.textContent = text;
  cell.status.dataset.outcome = outcome;
  // Pending and waitlisted stay until the purchase is decided.
  cell.statusTimer = outcome === 'pending' || outcome === 'waitlisted' ? undefined : setTimeout(() => {
    cell.status.textContent = '';
    delete cell.status.dataset.outcome;
  }, OUTCOME_SHOWN_MS);
}

function retryAfterMs(response) {
  const s = Number(response.headers.get('Retry-After'));
  return Number.isFinite(s) && s > 0 ? Math.min(s, 3) * 1000 : 500;
}

/** POST /v1/purchases for one unit; retries only what the API says to retry with the same key. */
async function requestPurchase(sku, idempotencyKey) {
  const init = {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Idempotency-Key': idempotencyKey, 'X-Customer-Id': customer },
    body: JSON.stringify({ items: [{ sku, qty: 1 }] }),
  };
  for (let attempt = 1; ; attempt++) {
    let response;
    try {
      response = await fetch('/v1/purchases', init);
    } catch (err) {
      // The request may or may not have reached the gateway: the same key makes a retry safe.
      if (attempt < PURCHASE_ATTEMPTS) {
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      return { status: 0, body: { error: 'network_error', message: `network error: ${err instanceof Error ? err.message : String(err)}` } };
    }
    let body;
    try {
      body = await response.json();
    } catch {
      body = { error: 'bad_response', message: `HTTP ${response.status}` };
    }
    const retry = response.status === 503 || (response.status === 409 && body?.error === 'idempotency_in_progress');
    if (retry && attempt < PURCHASE_ATTEMPTS) {
      await new Promise((r) => setTimeout(r, retryAfterMs(response)));
      continue;
    }
    return { status: response.status, body, retryAfter: response.headers.get('Retry-After') };
  }
}

/** Shows a decided purchase (a direct answer or a waitlisted ticket's fate) on its card. */
function showDecided(sku, cell, status, body, retryAfter) {
  let message;
  if (status === 201) {
    message = `reserved · order ${String(body.orderId).slice(0, 8)}`;
    showOutcome(cell, 'reserved', message);
  } else if (body?.error === 'sold_out') {
    message = 'sold out';
    cell.soldOut = true; // until the feed brings a newer state of the SKU
    showOutcome(cell, 'sold_out', message);
  } else if (status === 429) {
    message = `rate limited · retry in ${retryAfter ?? 1} s`;
    showOutcome(cell, 'rate_limited', message);
  } else {
    message = typeof body?.message === 'string' && body.message ? body.message : `HTTP ${status}`;
    showOutcome(cell, 'error', message);
    if (status !== 0) console.warn('purchase refused', sku, status, body);
  }
  cell.status.title = message;
  return message;
}

/** GET the ticket's state until it is decided; gives up after a few failures in a row. */
async function pollFate(fateUrl) {
  let failures = 0;
  for (;;) {
    try {
      const response = await fetch(fateUrl, { headers: { Accept: 'application/json', 'X-Customer-Id': customer } });
      const body = await response.json().catch(() => undefined);
      if (response.ok && body?.decided === true && body.outcome) return body.outcome;
      if (response.ok && body?.decided === false) failures = 0;
      else if (response.status >= 400 && response.status < 500) {
        // An invalid or unknown ticket stays so: no point in asking again.
        return { status: response.status, body: body ?? { error: 'bad_response', message: `HTTP ${response.status}` } };
      } else failures++;
    } catch {
      failures++;
    }
    if (failures >= FATE_POLL_FAILURES) return { status: 0, body: { error: 'fate_unknown', message: 'lost track of the ticket; check your orders' } };
    await new Promise((r) => setTimeout(r, FATE_POLL_MS));
  }
}

/**
 * The fate of a waitlisted ticket ({status, body}, what its purchase was answered). A ticket
 * opens only for its customer and EventSource cannot name one (no headers), so the page polls
 * `fate` with X-Customer-Id; a client with a bearer token can read the `events` stream instead.
 */
function awaitFate(waitlisted) {
  return pollFate(waitlisted.fate);
}

async function purchase(sku, cell) {
  if (cell.busy) return;
  cell.busy = true;
  updateBuy(cell);
  showOutcome(cell, 'pending', 'buying…');
  const idempotencyKey = uuid();
  const { status, body, retryAfter } = await requestPurchase(sku, idempotencyKey);
  const record = { sku, idempotencyKey, status, error: body?.error, orderId: body?.orderId, message: '' };
  if (status === 202 && body?.status === 'waitlisted' && typeof body.events === 'string') {
    // The waiting room: the button stays disabled until the ticket's fate is known.
    record.ticket = body.ticket;
    record.message = `waitlisted · ticket ${body.ticket}`;
    showOutcome(cell, 'waitlisted', record.message);
    cell.status.title = body.position ? `${record.message} (position ${body.position} when drawn)` : record.message;
    purchases.push(record);
    const fate = await awaitFate(body);
    const message = showDecided(sku, cell, fate.status, fate.body, undefined);
    record.fate = { status: fate.status, error: fate.body?.error, orderId: fate.body?.orderId, message };
  } else {
    record.message = showDecided(sku, cell, status, body, retryAfter);
    purchases.push(record);
  }
  cell.busy = false;
  updateBuy(cell);
}

// ---------------------------------------------------------------------------------------------
// the stream

const url = new URL('/v1/stream', location.href);
url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';

const client = new StockClient({ url: url.href, channel: 'storefront' });
window.__client = client;
setState(client.state);

client.on('state', (state) => {
  setState(state);
  if (state === 'open') noticeEl.hidden = true;
});

client.on('snapshot', (items, info) => {
  for (const item of items) {
    stock[item.sku] = item;
    pending.set(item.sku, { item, lag: undefined });
  }
  markUnknown(info.unknown);
  scheduleDraw();
});

client.on('deltas', (items) => {
  const now = Date.now();
  for (const item of items) {
    const lag = Math.round(now - item.commitTs);
    stock[item.sku] = item;
    pending.set(item.sku, { item, lag });
    recordLag(lag);
    changes += 1;
  }
  scheduleDraw();
});

client.on('error', (error) => {
  if (error.closeCode !== undefined) showNotice(`disconnected: ${error.code} — ${error.message}`);
  else if (error.code !== 'bad_server_frame') showNotice(`${error.code}: ${error.message}`);
  console.warn('stock client error', error);
});

client.subscribe(skus);

window.addEventListener('pagehide', () => client.close());
