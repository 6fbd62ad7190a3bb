/**
 * The gate's availability of a SKU (docs/purchase-path.md, "The gate"): what the view committed,
 * plus what the SKU's backorder policy allows beyond on hand (docs/incoming.md), minus units of holds whose write-back has not committed (inflight), minus units written back
 * at a version the view has not reached (unreflected). The Lua twin, which the scripts decide
 * with, is purchase/lua/includes/gate-available.lua. Pure.
 */
export interface GateTerms {
  viewAvailable: number;
  /** Units the SKU's backorder policy allows beyond on hand (the view's `backorderable`; docs/incoming.md). Absent: 0. */
  viewBackorderable?: number;
  inflight: number;
  unreflected: number;
}

export function gateAvailable(t: GateTerms): number {
  return t.viewAvailable + (t.viewBackorderable ?? 0) - t.inflight - t.unreflected;
}
