/**
 * Allocation of a purchase line across a SKU's locations. Pure.
 *
 * Rule: take from the location with the most sellable units first (ties: location id order),
 * splitting the line across locations only when one is not enough. Most-available-first keeps
 * the number of reservation rows (and pick locations) minimal for typical orders and drains big
 * locations before small ones, so the last units of a SKU stay spread as little as possible.
 * Sellable per location is on_hand - reserved - safety_stock, never below 0: the same figure the
 * view sums into `available`, so a line the gate accepted always fits.
 */
export interface LocationStock {
  locationId: string;
  onHand: number;
  reserved: number;
  safetyStock: number;
}

export interface Allocation {
  locationId: string;
  qty: number;
}

export function sellable(l: LocationStock): number {
  return Math.max(0, l.onHand - l.reserved - l.safetyStock);
}

/** Allocates `qty` units; null when the locations together cannot cover it. */
export function allocate(locations: readonly LocationStock[], qty: number): Allocation[] | null {
  const order = locations
    .map((l) => ({ locationId: l.locationId, free: sellable(l) }))
    .filter((l) => l.free > 0)
    .sort((a, b) => b.free - a.free || (a.locationId < b.locationId ? -1 : a.locationId > b.locationId ? 1 : 0));
  const out: Allocation[] = [];
  let left = qty;
  for (const l of order) {
    if (left === 0) break;
    const take = Math.min(left, l.free);
    out.push({ locationId: l.locationId, qty: take });
    left -= take;
  }
  return left === 0 ? out : null;
}
