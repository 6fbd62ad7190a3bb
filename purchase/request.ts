/**
 * The purchase path's request rules, public for the gateway: the body and Idempotency-Key checks
 * its HTTP handler runs before calling the service, and the customer-id rule its identity checks
 * share with them, and the bodies of the hold lifecycle's routes. Pure (no I/O); the rules
 * themselves are domain/request.ts and domain/hold-lifecycle.ts.
 */
export { customerIdProblem, MAX_ITEMS, MAX_QTY, validatePurchase, validIdempotencyKey, type PurchaseBody, type PurchaseRequest } from './domain/request.ts';
export { MAX_EXTEND_S, validateChange, validateExtend } from './domain/hold-lifecycle.ts';
