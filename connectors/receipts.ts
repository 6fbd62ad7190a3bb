/**
 * Expected receipts (purchase orders / ASNs), receiving and per-SKU backorder policies: the
 * public face the gateway's HTTP routes (gateway/receipts-http.ts) use (docs/incoming.md). How
 * bodies are validated (receipts/domain/) and written (receipts/adapters/) stays here.
 */
import type pg from 'pg';
import { ReceiptStore } from './receipts/adapters/pg-receipts.ts';

export { validatePolicy, validateReceipt, validateReceive, validateReceiptId } from './receipts/domain/receipt.ts';
export type { PolicyInput, ReceiptInput, ReceiveInput } from './receipts/domain/receipt.ts';
export type { Conversion, PolicyView, ReceiptView } from './receipts/adapters/pg-receipts.ts';

export type ReceiptsPort = Pick<ReceiptStore, 'upsert' | 'get' | 'receive' | 'setPolicy' | 'getPolicy'>;

export function createReceiptStore(deps: { pool: pg.Pool }): ReceiptsPort {
  return new ReceiptStore(deps);
}
