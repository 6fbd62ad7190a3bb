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

/**
 * How a sales channel's purchase is allocated (docs/channels.md, "Sourcing"): only on the
 * channel's locations (`order`, its priority order), by its rule. No channel: `allocate`.
 *   priority       the first location in priority order with sellable units, splitting as needed
 *   most_stock     `allocate`, restricted to the channel's locations
 *   fewest_splits  the first location (priority order) that covers what is left, else the one
 *                  with the most units (then again), so a line splits only when it must
 *   single         `order` holds only the pickup location; never split
 * `pinned`: units per location that other channels' fences keep (pinsAgainst in
 * lib/contracts/channels.ts); never taken.
 * The write-back function (migration 0015) applies the same rules; an integration test compares.
 */
export function allocateFor(
  locations: readonly LocationStock[],
  qty: number,
  rule: 'priority' | 'most_stock' | 'fewest_splits' | 'single',
  order: readonly string[],
  pinned: ReadonlyMap<string, number> = new Map(),
): Allocation[] | null {
  const rank = new Map(order.map((l, i) => [l, i]));
  const free = new Map(locations.filter((l) => rank.has(l.locationId)).map((l) => [l.locationId, Math.max(0, sellable(l) - (pinned.get(l.locationId) ?? 0))]));
  const out: Allocation[] = [];
  let left = qty;
  const byPriority = [...free.keys()].sort((a, b) => rank.get(a)! - rank.get(b)!);
  while (left > 0) {
    let best: string | undefined;
    if (rule === 'fewest_splits' || rule === 'single') best = byPriority.find((l) => free.get(l)! >= left);
    if (best === undefined && rule !== 'single') {
      const candidates = byPriority.filter((l) => free.get(l)! > 0);
      if (rule === 'priority') best = candidates[0];
      else best = candidates.sort((a, b) => free.get(b)! - free.get(a)! || (a < b ? -1 : a > b ? 1 : 0))[0];
    }
    if (best === undefined) return null;
    const take = Math.min(left, free.get(best)!);
    free.set(best, free.get(best)! - take);
    out.push({ locationId: best, qty: take });
    left -= take;
  }
  return out;
}
