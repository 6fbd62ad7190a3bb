// Storefront demo page: a live grid of SKUs fed by the gateway's WebSocket stream (channel
// `storefront`) through the browser build of the SDK. Plain browser JS, no build step.
//
// Query parameters: `?skus=A,B,C` shows those SKUs; `?count=N` the first N demo SKUs
// (SKU-000001 ...); default: the first 48.
//
// Test hooks: every cell has `data-sku`, its values `data-testid="available" | "version" | "lag"`;
// `document.body.dataset.state` mirrors the client state; `window.__stock` is a plain object
// sku -> latest item the page holds; `window.__client` is the StockClient.
import { StockClient } from '/sdk.js';

const DEFAULT_COUNT = 48;
const MAX_SKUS = 1000; // the gateway's default maxSubscriptions
const LAG_WINDOW = 1000; // p50 over the last N live changes
const STATS_EVERY_MS = 250;

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

/** @typedef {{ root: HTMLElement, available: HTMLElement, version: HTMLElement, lag: HTMLElement }} Cell */
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
  const root = el('article', { class: 'cell', 'data-sku': sku, 'data-level': 'pending' }, [
    el('div', { class: 'sku', title: sku, text: sku }),
    available,
    el('div', { class: 'label', text: 'available' }),
    el('dl', { class: 'meta' }, [
      el('div', {}, [el('dt', { text: 'v' }), version]),
      el('div', { title: 'Postgres commit → this browser, for the last live change' }, [el('dt', { text: 'lag' }), lag, el('small', { class: 'unit', text: ' ms' })]),
    ]),
  ]);
  return { root, available, version, lag };
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
