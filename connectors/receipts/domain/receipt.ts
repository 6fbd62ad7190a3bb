/**
 * Expected receipts (purchase orders / ASNs), receiving, and the per-SKU backorder policy
 * (docs/incoming.md): the shapes of their HTTP bodies, validated strictly, and the backorder
 * allowance rule's inputs. Pure: no Postgres. The database re-checks what only it can know
 * (catalog membership, line history) in receipt_upsert / receipt_receive (migration 0018).
 */

export const RECEIPT_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
export const MAX_RECEIPT_LINES = 200;
export const MAX_RECEIPT_LINE = 10_000;
export const MAX_RECEIPT_QUANTITY = 1_000_000_000;
export const BACKORDER_POLICIES = ['none', 'backorder', 'preorder'] as const;
export type BackorderPolicyName = (typeof BACKORDER_POLICIES)[number];

export interface ReceiptLineInput {
  line: number;
  sku: string;
  locationId: string;
  quantity: number;
  /** ISO 8601 with a zone, normalised to UTC `...Z`. */
  eta: string;
  /** true: the line is no longer expected (its open units leave `incoming`). */
  cancelled?: boolean;
}

export interface ReceiptInput {
  receiptId: string;
  reference: string | null;
  lines: ReceiptLineInput[];
}

export interface ReceiveInput {
  receiptId: string;
  lines: Array<{ line: number; quantity: number }>;
}

export interface PolicyInput {
  sku: string;
  policy: BackorderPolicyName;
  /** backorder: required; preorder: optional cap; none: absent. */
  limit: number | null;
}

export type Validated<T> = { ok: true; value: T } | { ok: false; field: string; message: string };

const fail = (field: string, message: string): { ok: false; field: string; message: string } => ({ ok: false, field, message });

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownKeys(o: Record<string, unknown>, allowed: readonly string[], at: string): { ok: false; field: string; message: string } | undefined {
  const extra = Object.keys(o).find((k) => !allowed.includes(k));
  return extra === undefined ? undefined : fail(at ? `${at}.${extra}` : extra, 'unknown field');
}

function text(v: unknown, max: number): v is string {
  // eslint-disable-next-line no-control-regex
  return typeof v === 'string' && v.length >= 1 && v.length <= max && !/[\u0000-\u001f\u007f]/.test(v);
}

function wholeIn(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;
}

/** An ETA: an ISO 8601 date-time with a zone (Z or ±hh:mm), years 2000–9999. */
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$/;
export function parseEta(v: unknown): string | undefined {
  if (typeof v !== 'string' || !ISO.test(v)) return undefined;
  const ms = Date.parse(v);
  if (!Number.isFinite(ms)) return undefined;
  const d = new Date(ms);
  const year = d.getUTCFullYear();
  return year >= 2000 && year <= 9999 ? d.toISOString() : undefined;
}

export function validateReceiptId(id: string): Validated<string> {
  return RECEIPT_ID.test(id) ? { ok: true, value: id } : fail('receiptId', 'a receipt id is 1 to 64 characters: letters, digits and _ . : - (not first)');
}

/** PUT /v1/receipts/:receiptId body: `{reference?, lines: [{line, sku, locationId, quantity, eta, cancelled?}]}`. */
export function validateReceipt(receiptId: string, body: unknown): Validated<ReceiptInput> {
  const id = validateReceiptId(receiptId);
  if (!id.ok) return id;
  if (!isObject(body)) return fail('', 'the body is a JSON object');
  const extra = unknownKeys(body, ['reference', 'lines'], '');
  if (extra) return extra;
  const reference = body.reference ?? null;
  if (reference !== null && !text(reference, 128)) return fail('reference', 'a reference is 1 to 128 characters without control characters');
  if (!Array.isArray(body.lines) || body.lines.length === 0 || body.lines.length > MAX_RECEIPT_LINES) {
    return fail('lines', `lines is an array of 1 to ${MAX_RECEIPT_LINES} lines`);
  }
  const seen = new Set<number>();
  const lines: ReceiptLineInput[] = [];
  for (const [i, raw] of body.lines.entries()) {
    const at = `lines[${i}]`;
    if (!isObject(raw)) return fail(at, 'a line is an object');
    const bad = unknownKeys(raw, ['line', 'sku', 'locationId', 'quantity', 'eta', 'cancelled'], at);
    if (bad) return bad;
    if (!wholeIn(raw.line, 1, MAX_RECEIPT_LINE)) return fail(`${at}.line`, `a line number is a whole number from 1 to ${MAX_RECEIPT_LINE}`);
    if (seen.has(raw.line)) return fail(`${at}.line`, `line ${raw.line} appears twice`);
    seen.add(raw.line);
    if (!text(raw.sku, 128)) return fail(`${at}.sku`, 'a SKU is 1 to 128 characters without control characters');
    if (!text(raw.locationId, 64)) return fail(`${at}.locationId`, 'a location id is 1 to 64 characters without control characters');
    if (!wholeIn(raw.quantity, 1, MAX_RECEIPT_QUANTITY)) return fail(`${at}.quantity`, `quantity is a whole number from 1 to ${MAX_RECEIPT_QUANTITY}`);
    const eta = parseEta(raw.eta);
    if (eta === undefined) return fail(`${at}.eta`, 'eta is an ISO 8601 date-time with a zone, e.g. 2026-12-24T09:00:00Z');
    if (raw.cancelled !== undefined && typeof raw.cancelled !== 'boolean') return fail(`${at}.cancelled`, 'cancelled is true or false');
    lines.push({ line: raw.line, sku: raw.sku, locationId: raw.locationId, quantity: raw.quantity, eta, ...(raw.cancelled ? { cancelled: true } : {}) });
  }
  return { ok: true, value: { receiptId, reference, lines } };
}

/** POST /v1/receipts/:receiptId/receive body: `{lines: [{line, quantity}]}`. */
export function validateReceive(receiptId: string, body: unknown): Validated<ReceiveInput> {
  const id = validateReceiptId(receiptId);
  if (!id.ok) return id;
  if (!isObject(body)) return fail('', 'the body is a JSON object');
  const extra = unknownKeys(body, ['lines'], '');
  if (extra) return extra;
  if (!Array.isArray(body.lines) || body.lines.length === 0 || body.lines.length > MAX_RECEIPT_LINES) {
    return fail('lines', `lines is an array of 1 to ${MAX_RECEIPT_LINES} lines`);
  }
  const seen = new Set<number>();
  const lines: ReceiveInput['lines'] = [];
  for (const [i, raw] of body.lines.entries()) {
    const at = `lines[${i}]`;
    if (!isObject(raw)) return fail(at, 'a line is an object');
    const bad = unknownKeys(raw, ['line', 'quantity'], at);
    if (bad) return bad;
    if (!wholeIn(raw.line, 1, MAX_RECEIPT_LINE)) return fail(`${at}.line`, `a line number is a whole number from 1 to ${MAX_RECEIPT_LINE}`);
    if (seen.has(raw.line)) return fail(`${at}.line`, `line ${raw.line} appears twice`);
    seen.add(raw.line);
    if (!wholeIn(raw.quantity, 1, MAX_RECEIPT_QUANTITY)) return fail(`${at}.quantity`, `quantity is a whole number from 1 to ${MAX_RECEIPT_QUANTITY}`);
    lines.push({ line: raw.line, quantity: raw.quantity });
  }
  return { ok: true, value: { receiptId, lines } };
}

/** PUT /v1/skus/:sku/backorder-policy body: `{policy, limit?}`. */
export function validatePolicy(sku: string, body: unknown): Validated<PolicyInput> {
  if (!text(sku, 128)) return fail('sku', 'a SKU is 1 to 128 characters without control characters');
  if (!isObject(body)) return fail('', 'the body is a JSON object');
  const extra = unknownKeys(body, ['policy', 'limit'], '');
  if (extra) return extra;
  const policy = body.policy;
  if (typeof policy !== 'string' || !(BACKORDER_POLICIES as readonly string[]).includes(policy)) return fail('policy', `policy is one of ${BACKORDER_POLICIES.join(', ')}`);
  const limit = body.limit ?? null;
  if (limit !== null && !wholeIn(limit, 0, MAX_RECEIPT_QUANTITY)) return fail('limit', `limit is a whole number from 0 to ${MAX_RECEIPT_QUANTITY}`);
  if (policy === 'backorder' && limit === null) return fail('limit', 'the backorder policy needs a limit (the most units backordered at once)');
  if (policy === 'none' && limit !== null) return fail('limit', 'the none policy takes no limit');
  return { ok: true, value: { sku, policy: policy as BackorderPolicyName, limit } };
}
