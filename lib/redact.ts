/**
 * Credentials never reach a console, a log line or a metric label: every place that prints a URL
 * (a connection string, a service address) passes it through `redactUrl` first. The user name
 * stays (it says which account is used); the password, and secrets carried in the query string
 * (`password=`, `sslpassword=`, tokens, keys), become `***`.
 */

const SECRET_PARAM = /pass|secret|token|key|auth|credential|signature/i;

export const REDACTED = '***';

/**
 * `redis://:s3cret@host:6379` -> `redis://:***@host:6379`;
 * `postgres://invsync:pw@h/db?sslpassword=x` -> `postgres://invsync:***@h/db?sslpassword=***`.
 * With `drop`, the password is left out instead (`postgres://invsync@h/db`).
 * Anything that does not parse as a URL is returned with any `user:password@` part redacted,
 * so a malformed value with a secret in it is not printed whole either.
 */
export function redactUrl(value: string, opts: { drop?: boolean } = {}): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return value.replace(/\/\/([^/@:]*):[^@]*@/, `//$1:${REDACTED}@`);
  }
  const secretParams = [...u.searchParams.keys()].filter((name) => SECRET_PARAM.test(name));
  // Nothing secret: the value as given (no normalisation such as a trailing slash).
  if (!u.password && secretParams.length === 0) return value;
  // drop: no password at all, for a command line to copy (the tool asks, or reads ~/.pgpass).
  if (u.password) u.password = opts.drop ? '' : REDACTED;
  for (const name of secretParams) u.searchParams.set(name, REDACTED);
  // The query serializer percent-encodes the marker; undo that for readability.
  return u.toString().replaceAll('%2A%2A%2A', REDACTED);
}

/** Every URL-looking substring of `text` redacted (for free-form lines such as error messages). */
export function redactUrlsIn(text: string): string {
  return text.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>]+/gi, (m) => redactUrl(m));
}
