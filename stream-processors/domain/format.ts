/** Human-readable one-line rendering of a stock change, for the CDC tail. Pure. */
import { available, type StockChange } from './stock-change.ts';

export function formatChange(change: StockChange, receivedAt: number): string {
  const time = new Date(change.commitTs).toISOString().slice(11, 23);
  const where = `${change.sku}@${change.locationId}`.padEnd(22);
  const lag = `${Math.max(0, receivedAt - change.commitTs)} ms after commit`;
  if (!change.row) return `${time}  ${where}  deleted                                               ${lag}`;
  const r = change.row;
  const op = change.op === 'snapshot' ? 'snapshot' : change.op === 'create' ? 'insert' : 'update';
  return (
    `${time}  ${where}  ${op.padEnd(8)} on_hand ${String(r.onHand).padStart(5)}  reserved ${String(r.reserved).padStart(4)}` +
    `  available ${String(available(r)).padStart(5)}  v${r.version}  ${lag}`
  );
}
