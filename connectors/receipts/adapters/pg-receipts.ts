/**
 * Expected receipts, receiving and backorder policies in Postgres (migration 0018,
 * docs/incoming.md): one SQL function call per request, each its own transaction, so a refusal
 * changes nothing. Must not: decide what a valid body is (domain/receipt.ts) or answer HTTP.
 */
import type pg from 'pg';
import { fromPgError } from '../../../lib/driver-errors.ts';
import { ContentionError, PlatformError, ReceiptLineConflictError, UnknownLocationError, UnknownReceiptError, UnknownSkuError } from '../../../lib/errors.ts';
import { retry } from '../../../lib/retry.ts';
import { encodeMovementContext, movementContextFrom, type MovementContext } from '../../../lib/contracts/movements.ts';
import type { PolicyInput, ReceiptInput, ReceiveInput } from '../domain/receipt.ts';

export interface ReceiptLineView {
  line: number;
  sku: string;
  locationId: string;
  quantity: number;
  receivedQuantity: number;
  status: 'open' | 'received' | 'cancelled';
  eta: string;
}

export interface ReceiptView {
  receiptId: string;
  reference: string | null;
  lines: ReceiptLineView[];
}

/** A backordered order line (part of it) converted by a receipt into stock held for the order. */
export interface Conversion {
  orderId: string;
  customerId: string;
  status: 'reserved' | 'confirmed';
  sku: string;
  locationId: string;
  qty: number;
  stillBackordered: number;
}

export interface PolicyView {
  sku: string;
  policy: PolicyInput['policy'];
  limit: number | null;
}

const RETRY = { retries: 4, initialDelayMs: 5, maxDelayMs: 200, retriable: (err: unknown) => fromPgError(err) instanceof ContentionError };

type Refusal = { ok: false; reason: string; message?: string; details?: Record<string, unknown> };

function refusal(r: Refusal): PlatformError {
  switch (r.reason) {
    case 'unknown_sku':
      return new UnknownSkuError(`the catalog does not know SKU ${String(r.details?.sku)}; nothing was recorded`, { details: r.details });
    case 'unknown_location':
      return new UnknownLocationError(`the catalog does not know location ${String(r.details?.locationId)}; nothing was recorded`, { details: r.details });
    case 'unknown_receipt':
      return new UnknownReceiptError('no expected receipt has this id', { details: r.details });
    default:
      return new ReceiptLineConflictError(`${r.message ?? 'the receipt line cannot take this change'}; nothing changed`, { details: r.details });
  }
}

export class ReceiptStore {
  constructor(private readonly deps: { pool: pg.Pool }) {}

  /** One function call, its stock changes recorded in the movement ledger with `ctx` (docs/ledger.md). */
  private async call<T>(fn: string, arg: unknown, ctx: MovementContext): Promise<T> {
    const r = await retry(() => this.deps.pool.query<{ out: T }>(`SELECT ${fn}($1::jsonb) AS out FROM ${movementContextFrom(2)}`, [JSON.stringify(arg), encodeMovementContext(ctx)]), RETRY);
    return r.rows[0]!.out;
  }

  /** Creates or updates the receipt's lines; throws a catalog error for a refusal. */
  async upsert(input: ReceiptInput, actor: string | null = null): Promise<ReceiptView> {
    const ctx: MovementContext = { kind: 'expect', source: 'receipts', reference: `receipt:${input.receiptId}`, actor, ...(input.reference ? { details: { reference: input.reference } } : {}) };
    const out = await this.call<{ ok: true; receipt: ReceiptView } | Refusal>('receipt_upsert', input, ctx);
    if (!out.ok) throw refusal(out);
    return out.receipt;
  }

  async get(receiptId: string): Promise<ReceiptView | null> {
    const r = await this.deps.pool.query<{ out: ReceiptView | null }>('SELECT receipt_view($1) AS out', [receiptId]);
    return r.rows[0]?.out ?? null;
  }

  /** Receives units and converts backorders; throws a catalog error for a refusal (nothing applied). */
  async receive(input: ReceiveInput, actor: string | null = null): Promise<{ receipt: ReceiptView; converted: Conversion[] }> {
    let out: { ok: true; receipt: ReceiptView; converted: Conversion[] } | Refusal;
    try {
      out = await this.call('receipt_receive', input, { kind: 'receive', source: 'receipts', reference: `receipt:${input.receiptId}`, actor });
    } catch (err) {
      const state = (err as { code?: unknown }).code;
      if (state === 'IVR01' || state === 'IVR02') {
        const detail = JSON.parse(String((err as { detail?: unknown }).detail ?? '{}')) as Record<string, unknown>;
        throw new ReceiptLineConflictError(state === 'IVR01' ? `the receipt has no line ${String(detail.line)}; nothing was received` : `line ${String(detail.line)} is ${String(detail.status)}; nothing was received`, { details: detail });
      }
      throw fromPgError(err);
    }
    if (!out.ok) throw refusal(out);
    return { receipt: out.receipt, converted: out.converted };
  }

  /** Sets a SKU's policy (`none` removes the row: no row is none). */
  async setPolicy(p: PolicyInput, actor: string | null = null): Promise<PolicyView> {
    if (!(await this.deps.pool.query('SELECT 1 FROM products WHERE sku = $1', [p.sku])).rowCount) {
      throw new UnknownSkuError(`the catalog does not know SKU ${p.sku}; nothing was recorded`, { details: { sku: p.sku } });
    }
    try {
      // The policy is copied onto the SKU's stock rows by a trigger: those row changes are
      // movements (of no units) the ledger attributes to this request.
      const ctx = encodeMovementContext({ kind: 'policy', source: 'backorder-policy', reference: `sku:${p.sku}`, actor, details: { policy: p.policy, limit: p.limit } });
      if (p.policy === 'none') await retry(() => this.deps.pool.query(`DELETE FROM sku_backorder_policies USING ${movementContextFrom(2)} WHERE sku = $1`, [p.sku, ctx]), RETRY);
      else {
        await retry(
          () =>
            this.deps.pool.query(
              `INSERT INTO sku_backorder_policies (sku, policy, backorder_limit) SELECT $1, $2, $3 FROM ${movementContextFrom(4)}
               ON CONFLICT (sku) DO UPDATE SET policy = excluded.policy, backorder_limit = excluded.backorder_limit, updated_at = clock_timestamp()`,
              [p.sku, p.policy, p.limit, ctx],
            ),
          RETRY,
        );
      }
    } catch (err) {
      const e = fromPgError(err);
      // A product deleted between the check and the write: the foreign key says so.
      if ((err as { code?: unknown }).code === '23503') throw new UnknownSkuError(`the catalog does not know SKU ${p.sku}; nothing was recorded`, { details: { sku: p.sku }, cause: e });
      throw e;
    }
    return { sku: p.sku, policy: p.policy, limit: p.limit };
  }

  async getPolicy(sku: string): Promise<PolicyView> {
    const r = await this.deps.pool.query<{ policy: PolicyView['policy']; backorder_limit: number | null }>('SELECT policy, backorder_limit FROM sku_backorder_policies WHERE sku = $1', [sku]);
    const row = r.rows[0];
    return { sku, policy: row?.policy ?? 'none', limit: row?.backorder_limit ?? null };
  }
}
