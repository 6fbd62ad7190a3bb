/**
 * Turning a zod failure into the platform's bad-input answer: the first offending field, as a
 * path clients recognise (`items[0].qty`, `coupon` for an unknown key), and a message. Shared by
 * every validator of client input (purchases, adjustments), so errors look the same everywhere.
 */
import type { z } from 'zod';

export type Validation<T> = { ok: true; value: T } | { ok: false; field: string; message: string };

export function toValidation<T>(r: { success: true; data: T } | { success: false; error: z.ZodError }): Validation<T> {
  if (r.success) return { ok: true, value: r.data };
  const issue = r.error.issues[0]!;
  let field = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
  if (issue.code === 'unrecognized_keys') {
    const keys = (issue as { keys?: string[] }).keys ?? [];
    field = [field, keys[0]].filter(Boolean).join('.');
    return { ok: false, field: field || 'body', message: `unknown field${keys.length > 1 ? 's' : ''} ${keys.join(', ')}` };
  }
  return { ok: false, field: field || 'body', message: issue.message };
}
