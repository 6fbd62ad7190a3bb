/**
 * How many units of a SKU may be sold beyond its on-hand availability (docs/incoming.md): the
 * per-SKU backorder policy applied to the SKU's summed incoming and backordered units. One rule,
 * three copies that must agree: backorder_allowance() in SQL (migration 0018, decided under lock
 * by the write-back), includes/backorder-allowance.lua (the view summary's `backorderable`, which
 * the gate adds to `available`) and this function (rebuild, reconcile, tests). Pure.
 *
 *   none       0
 *   backorder  max(0, limit - backordered)                 (promised with or without a receipt)
 *   preorder   max(0, min(incoming, limit ?? incoming) - backordered)
 */

/** The policy as stored in a view row: 0 none, 1 backorder, 2 preorder. */
export const POLICY_CODE = { none: 0, backorder: 1, preorder: 2 } as const;
export type PolicyName = keyof typeof POLICY_CODE;
export const POLICY_NAME: readonly PolicyName[] = ['none', 'backorder', 'preorder'];

export interface BackorderTerms {
  policy: PolicyName;
  /** null: none (a preorder then sells up to incoming). */
  limit: number | null;
  incoming: number;
  backordered: number;
}

export function backorderAllowance(t: BackorderTerms): number {
  switch (t.policy) {
    case 'backorder':
      return Math.max(0, (t.limit ?? 0) - t.backordered);
    case 'preorder':
      return Math.max(0, Math.min(t.incoming, t.limit ?? t.incoming) - t.backordered);
    default:
      return 0;
  }
}

export function policyFromCode(code: number): PolicyName {
  return POLICY_NAME[code] ?? 'none';
}
