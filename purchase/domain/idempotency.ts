/** Idempotency keys as the gate stores them. Pure. */

/**
 * An Idempotency-Key as stored in Redis: scoped by the customer, so one customer's key can never
 * replay (or block) another customer's purchase. The customer part is URI-encoded (no `:`).
 */
export function scopedIdempotencyKey(customerId: string, key: string): string {
  return `${encodeURIComponent(customerId)}:${key}`;
}
