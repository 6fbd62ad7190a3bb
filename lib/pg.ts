/** Postgres pool factory. Every pool has a statement timeout so a stuck query cannot hang a process. */
import pg from 'pg';

/**
 * Every pool has an 'error' listener: pg-pool re-emits on the pool the errors of its *idle*
 * clients (Postgres restarted, backend terminated), and an EventEmitter 'error' without a listener
 * ends the process. The pool drops the broken client by itself, so there is nothing else to do.
 * Callers that want to log add their own listener.
 */
export function createPgPool(connectionString: string, options: { max?: number; application?: string } = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.application ?? 'invsync',
    connectionTimeoutMillis: 5000,
    statement_timeout: 30_000,
  });
  pool.on('error', () => undefined);
  return pool;
}

/**
 * `pool.connect()` with an 'error' listener for as long as the client is checked out. pg-pool
 * removes its own listener while a client is out, so a connection lost then (Postgres stopped,
 * backend terminated) would be an unhandled 'error' event and end the process; with this, the
 * error only fails the query in flight, and the broken client is discarded on release.
 */
export async function checkout(pool: pg.Pool): Promise<pg.PoolClient> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => {
    broken = err;
  };
  client.on('error', onError);
  const release = client.release.bind(client);
  client.release = (err?: Error | boolean) => {
    client.removeListener('error', onError);
    return release(err ?? broken);
  };
  return client;
}

/**
 * Runs `fn` in one transaction on a checked-out client: COMMIT when it resolves, ROLLBACK (and
 * rethrow) when it throws, the client released either way. `begin` names the isolation, e.g.
 * 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' for a consistent snapshot over several reads.
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>, options: { begin?: string } = {}): Promise<T> {
  const client = await checkout(pool);
  try {
    await client.query(options.begin ?? 'BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
