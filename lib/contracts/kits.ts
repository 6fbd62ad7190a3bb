/**
 * Kits and bundles (docs/kits.md): the catalog every gateway holds (which SKUs are kits, of which
 * components in which quantities), the kit availability rule, the kit's version, and the expansion
 * of a purchase's kit lines into component lines. Pure: no Postgres, no Redis (lib/kit-config.ts
 * loads and watches the catalog; migration 0017 holds it).
 *
 * The rules, for a kit K with components c (quantity q(c) per kit):
 *   available(K)    = min over c of floor(available(c) / q(c))     (0 for a component with no state)
 *   available(K, ch) = min over c of floor(available(c, ch) / q(c)) (only when every component has ch)
 *   version(K)      = base(K) + sum over c of version(c)
 * A component's version only grows, so the kit's grows with any component change; a change of the
 * kit's components raises base(K) past every sum the old definition can have given (0017).
 */
import type { StockLevel } from '../../schemas/generated/avro-types.ts';

export interface KitComponent {
  sku: string;
  /** Units of the component per kit (1..1000). */
  qty: number;
}

export interface Kit {
  sku: string;
  /** kits.version_base: the kit's version is this plus the sum of its components' versions. */
  base: number;
  /** In SKU order; at least one. */
  components: KitComponent[];
}

export interface KitCatalog {
  /** kit_config.version: orders catalogs. 0 = never configured. */
  version: number;
  kits: ReadonlyMap<string, Kit>;
  /** component SKU -> the kits it is part of. */
  byComponent: ReadonlyMap<string, readonly string[]>;
}

export const EMPTY_KIT_CATALOG: KitCatalog = { version: 0, kits: new Map(), byComponent: new Map() };

/** Something that holds the current catalog (lib/kit-config.ts KitWatcher). */
export interface KitSource {
  readonly config: KitCatalog;
}

/** A catalog from its kits; kits without components are left out (they are not kits). */
export function kitCatalog(version: number, kits: Iterable<Kit>): KitCatalog {
  const byKit = new Map<string, Kit>();
  const byComponent = new Map<string, string[]>();
  for (const k of kits) {
    if (k.components.length === 0) continue;
    const components = [...k.components].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
    byKit.set(k.sku, { sku: k.sku, base: k.base, components });
    for (const c of components) {
      let list = byComponent.get(c.sku);
      if (!list) byComponent.set(c.sku, (list = []));
      list.push(k.sku);
    }
  }
  return { version, kits: byKit, byComponent };
}

/** The fields of a SKU state the kit rule reads (a StockLevel, a feed SkuState). */
export interface ComponentState {
  sku: string;
  available: number;
  version: number;
  deleted: boolean;
  commitTs: number;
  channels: Record<string, number> | null;
}

/** min over components of floor(figure / qty); a component without a figure gives 0. */
export function kitFigure(kit: Kit, figure: (sku: string) => number | undefined): number {
  let min = Number.MAX_SAFE_INTEGER;
  for (const c of kit.components) {
    const f = figure(c.sku);
    const units = f === undefined || !(f > 0) ? 0 : Math.floor(f / c.qty);
    if (units < min) min = units;
  }
  return kit.components.length === 0 ? 0 : min;
}

/** Kit version: base + the sum of the components' versions (a component with no state counts 0). */
export function kitVersion(kit: Kit, states: ReadonlyMap<string, ComponentState>): number {
  let v = kit.base;
  for (const c of kit.components) v += states.get(c.sku)?.version ?? 0;
  return v;
}

/**
 * The kit's state from its components' states, in the StockLevel shape every reader serves. A kit
 * holds no stock of its own: on hand is what is sellable, reserved and safety stock are 0, no
 * locations; `channels` holds a channel's figure when every component has one. Undefined when no
 * component has a state at all (the kit is then as unknown as a SKU without a view).
 */
export function kitState(kit: Kit, states: ReadonlyMap<string, ComponentState>): StockLevel | undefined {
  const live = (sku: string) => {
    const s = states.get(sku);
    return s && !s.deleted ? s : undefined;
  };
  if (!kit.components.some((c) => states.has(c.sku))) return undefined;
  const available = kitFigure(kit, (sku) => live(sku)?.available);
  let commitTs = 0;
  let channelIds: string[] | null = null;
  for (const c of kit.components) {
    const s = states.get(c.sku);
    if (s && s.commitTs > commitTs) commitTs = s.commitTs;
    const ids = s?.channels ? Object.keys(s.channels) : [];
    channelIds = channelIds === null ? ids : channelIds.filter((id) => ids.includes(id));
  }
  let channels: Record<string, number> | null = null;
  if (channelIds && channelIds.length > 0) {
    channels = {};
    for (const id of channelIds.sort()) channels[id] = kitFigure(kit, (sku) => (live(sku) ? states.get(sku)?.channels?.[id] : 0));
  }
  return { sku: kit.sku, available, onHand: available, reserved: 0, safetyStock: 0, version: kitVersion(kit, states), deleted: false, commitTs, locations: [], channels,
    // Incoming stock and backorders are the components' (docs/incoming.md): a kit shows none.
    incoming: null };
}

/** A kit line of a purchase, as the order remembers it. */
export interface KitLine {
  sku: string;
  qty: number;
  /** The kit's components per kit unit, as sold. */
  components: KitComponent[];
}

export type Expansion =
  | { ok: true; items: Array<{ sku: string; qty: number }>; kits: KitLine[] }
  | { ok: false; field: string; message: string };

/**
 * A purchase's items with every kit line replaced by its components (kit qty x component qty),
 * merged with single lines of the same SKU, in order of first appearance. `maxQty` bounds a merged
 * line (the body's own per-line bound): a kit that expands past it is refused with the field of
 * the line that crossed it. No kits in the items: the items as they are.
 */
export function expandKits(items: ReadonlyArray<{ sku: string; qty: number }>, catalog: KitCatalog, maxQty: number): Expansion {
  if (catalog.kits.size === 0 || !items.some((i) => catalog.kits.has(i.sku))) return { ok: true, items: items.map((i) => ({ sku: i.sku, qty: i.qty })), kits: [] };
  const merged = new Map<string, number>();
  const kits: KitLine[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    const kit = catalog.kits.get(item.sku);
    const parts = kit ? kit.components.map((c) => ({ sku: c.sku, qty: c.qty * item.qty })) : [{ sku: item.sku, qty: item.qty }];
    if (kit) kits.push({ sku: kit.sku, qty: item.qty, components: kit.components.map((c) => ({ sku: c.sku, qty: c.qty })) });
    for (const p of parts) {
      const total = (merged.get(p.sku) ?? 0) + p.qty;
      if (total > maxQty) {
        return { ok: false, field: `items[${i}].qty`, message: `${kit ? `kit ${kit.sku} ` : ''}brings the purchase to ${total} units of ${p.sku}, more than ${maxQty}` };
      }
      merged.set(p.sku, total);
    }
  }
  return { ok: true, items: [...merged].map(([sku, qty]) => ({ sku, qty })), kits };
}

/** The kits (of those subscribed to, or all) a change of `componentSku` changes. */
export function kitsOf(catalog: KitCatalog, componentSku: string): readonly string[] {
  return catalog.byComponent.get(componentSku) ?? [];
}
