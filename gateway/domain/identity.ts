/**
 * Who is asking, for the purchase path (docs/security.md#credentials-who-may-do-what). Pure: the credential was
 * verified by gateway/auth.ts; this decides which customer a request is for and what it may see.
 *
 *   customer token          the customer is the token's `sub`; a body `customerId` or an
 *                           `X-Customer-Id` header naming anyone else is refused
 *   service, purchase:act-for   acts for the customer it names (X-Customer-Id or body customerId)
 *   other service           no customer; may read/confirm/cancel orders with the matching scope
 *   no credential           401, unless the development anonymous mode is on: then the customer
 *                           is `anon:<name>` (X-Customer-Id or body customerId), a namespace no
 *                           token can use, so anonymous callers can never act as a real customer
 */
import { customerIdProblem } from '../../purchase/request.ts';
import type { ErrorCode } from '../../lib/errors.ts';
import type { Principal, VerifyResult } from '../auth.ts';

export const ACT_FOR = 'purchase:act-for';
export const ANONYMOUS_PREFIX = 'anon:';

/** A refusal; its HTTP status is the catalog's for `code` (lib/errors.ts). */
export interface Refusal {
  ok: false;
  code: Extract<ErrorCode, 'invalid_customer' | 'missing_customer' | 'unauthorized' | 'forbidden' | 'channel_forbidden' | 'unknown_sales_channel' | 'channel_without_locations'>;
  message: string;
  field?: string;
}

/** A caller: the customer it is (or acts for), if any, and its scopes. */
export interface Requester {
  customerId: string | undefined;
  scopes: ReadonlySet<string>;
  principal: Principal | undefined;
}

const bad = (code: Refusal['code'], message: string, field?: string): Refusal => ({ ok: false, code, message, ...(field ? { field } : {}) });

/** The one customer named by the header and/or the body (they must agree). */
function named(header: string | undefined, body: string | undefined): { ok: true; name: string | undefined; field: string } | Refusal {
  if (header !== undefined && body !== undefined && header !== body) return bad('invalid_customer', 'X-Customer-Id and the body customerId name different customers', 'customerId');
  const name = header ?? body;
  const field = header !== undefined ? 'X-Customer-Id' : 'customerId';
  if (name !== undefined) {
    const problem = customerIdProblem(name);
    if (problem) return bad('invalid_customer', `${field} ${problem}`, field);
  }
  return { ok: true, name, field };
}

/**
 * Resolves who a request is from. `verified` is the verifier's answer when a credential was
 * presented, undefined when none was.
 */
export function resolveRequester(
  verified: VerifyResult | undefined,
  names: { header: string | undefined; body?: string | undefined },
  allowAnonymous: boolean,
): { ok: true; requester: Requester } | Refusal {
  if (verified && !verified.ok) return bad('unauthorized', verified.reason);
  const n = named(names.header, names.body);
  if (!n.ok) return n;
  if (!verified) {
    if (!allowAnonymous) return bad('unauthorized', 'a credential is required: Authorization: Bearer <customer token or service key>');
    return { ok: true, requester: { customerId: n.name === undefined ? undefined : `${ANONYMOUS_PREFIX}${n.name}`, scopes: new Set(), principal: undefined } };
  }
  const p = verified.principal;
  if (p.kind === 'customer') {
    if (n.name !== undefined && n.name !== p.subject) return bad('invalid_customer', `${n.field} must be left out: the customer is the one your token names`, n.field);
    return { ok: true, requester: { customerId: p.subject, scopes: p.scopes, principal: p } };
  }
  if (n.name !== undefined && !p.scopes.has(ACT_FOR)) {
    return bad('forbidden', `credential ${p.subject} may not act for a customer (needs scope ${ACT_FOR})`, n.field);
  }
  if (n.name?.startsWith(ANONYMOUS_PREFIX)) return bad('invalid_customer', `${n.field} may not name an ${ANONYMOUS_PREFIX} customer (reserved for anonymous development purchases)`, n.field);
  return { ok: true, requester: { customerId: n.name, scopes: p.scopes, principal: p } };
}

/** The customer a purchase is for, or why there is none. */
export function purchaseCustomer(
  verified: VerifyResult | undefined,
  names: { header: string | undefined; body: string | undefined },
  allowAnonymous: boolean,
): { ok: true; customerId: string } | Refusal {
  const r = resolveRequester(verified, names, allowAnonymous);
  if (!r.ok) return r;
  if (r.requester.customerId !== undefined) return { ok: true, customerId: r.requester.customerId };
  if (r.requester.principal && !r.requester.scopes.has(ACT_FOR)) {
    return bad('forbidden', `credential ${r.requester.principal.subject} may not purchase (a customer token, or a service key with scope ${ACT_FOR})`);
  }
  return bad('missing_customer', 'name the customer: X-Customer-Id header (or body customerId)', 'X-Customer-Id');
}

/** What a gateway knows of the sales channels (lib/contracts/channels.ts ChannelConfig, narrowed). */
export interface ChannelDirectory {
  channels: ReadonlyMap<string, { locations: readonly string[] }>;
}

/**
 * The sales channel a purchase sells on (docs/channels.md, "Who may sell on a channel"), from
 * the credential and the body's `channel`:
 *   - a channel named in the body must exist and be one the credential may sell on (its
 *     `sales_channels` claim or `sales:<id>` grants); development anonymous purchases may name any;
 *   - none named: the credential's channel when it has exactly one, else none (the pooled
 *     figure, as before channels existed);
 *   - a channel without locations cannot sell anything: refused before the gate.
 */
export function purchaseChannel(
  principal: Principal | undefined,
  requested: string | undefined,
  directory: ChannelDirectory,
  allowAnonymous: boolean,
): { ok: true; channel: string | null } | Refusal {
  const allowed = principal?.salesChannels ?? new Set<string>();
  let channel: string | null = null;
  if (requested !== undefined) {
    if (!directory.channels.has(requested)) return bad('unknown_sales_channel', `no sales channel ${JSON.stringify(requested)}`, 'channel');
    if (principal ? !allowed.has(requested) : !allowAnonymous) {
      return bad('channel_forbidden', `credential ${principal?.subject ?? '(none)'} may not sell on sales channel ${JSON.stringify(requested)}`, 'channel');
    }
    channel = requested;
  } else if (allowed.size === 1) {
    channel = [...allowed][0]!;
    if (!directory.channels.has(channel)) return bad('unknown_sales_channel', `the credential's sales channel ${JSON.stringify(channel)} does not exist`, 'channel');
  }
  if (channel !== null && directory.channels.get(channel)!.locations.length === 0) {
    return bad('channel_without_locations', `sales channel ${JSON.stringify(channel)} has no locations: it cannot sell anything`, 'channel');
  }
  return { ok: true, channel };
}
