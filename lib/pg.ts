/** Postgres pool factory. Every pool has a statement timeout so a stuck query cannot hang a process. */
import pg from 'pg';

export function createPgPool(connectionString: string, options: { max?: number; application?: string } = {}): pg.Pool {
  return new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.application ?? 'invsync',
    connectionTimeoutMillis: 5000,
    statement_timeout: 30_000,
  });
}
