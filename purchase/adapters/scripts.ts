/**
 * How the purchase adapters call their Lua scripts (purchase/lua): loading (with includes, see
 * lib/lua-include.ts), the packed argument (one JSON ARGV per call instead of positional
 * offsets; keys stay KEYS, as Redis Cluster needs them declared) and the reply codes.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '../../lib/redis.ts';
import { defineLuaCommand, type LuaCommand } from '../../lib/redis.ts';

export const LUA_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'lua');

/**
 * Reply codes of the purchase scripts, the twin of purchase/lua/includes/codes.lua (a unit test
 * keeps them equal). Refusals are negative; each adapter decodes them into its typed outcome,
 * and domain/outcome.ts `refusal` turns those into catalog errors.
 */
export const SCRIPT_CODE = {
  OK: 0,
  ADMIT: 1,
  WAITLISTED: 2,
  KNOWN: 3,
  REPLAY: 4,
  EMPTY: 5,
  WAIT: 6,
  REBUILDING: -1,
  LIMITED_CUSTOMER: -2,
  LIMITED_ADDRESS: -3,
  UNKNOWN_SKU: -4,
  SOLD_OUT: -5,
  CUSTOMER_LIMIT: -6,
  CHANNEL_PENDING: -7,
} as const;

/** `purchase/lua/<script>.lua` as a command on the connection (`inv_<script>`). */
export function defineScript(redis: RedisClient, script: string): LuaCommand {
  return defineLuaCommand(redis, `inv_${script.replace(/-/g, '_')}`, path.join(LUA_DIR, `${script}.lua`));
}

/**
 * A script's packed argument: JSON, decoded once by the script with cjson. Strings are made
 * well-formed first (a lone surrogate becomes U+FFFD, as it does in keys sent as UTF-8), since
 * cjson refuses an escaped lone surrogate.
 */
export function packArgs(value: unknown): string {
  const json = JSON.stringify(value);
  // JSON.stringify writes a lone surrogate as an escape (\udXXX) and nothing else as one: only
  // then is the slower pass with the replacer needed (a backslash followed by "ud8" in a string
  // is written as \\ud8..., which also matches: the slow pass is still correct).
  return ESCAPED_SURROGATE.test(json) ? JSON.stringify(value, (_k, v: unknown) => (typeof v === 'string' ? wellFormed(v) : v)) : json;
}

const ESCAPED_SURROGATE = /\\u[dD][89a-fA-F]/;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function wellFormed(s: string): string {
  return s.replace(LONE_SURROGATE, '\uFFFD');
}
