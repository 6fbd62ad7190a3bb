/** `npm run seed`: loads the demo catalog (SEED_SKUS x SEED_LOCATIONS stock rows). Idempotent. */
import { loadConfigOrExit } from '../../lib/config.ts';
import { errorMessage } from '../../lib/errors.ts';
import { createPgPool } from '../../lib/pg.ts';
import { seedCatalog } from '../../lib/seed.ts';

const config = loadConfigOrExit();
const pool = createPgPool(config.pg.url, { max: 1, application: 'invsync-seed' });
try {
  const { inserted } = await seedCatalog(pool, config.seed);
  console.log(`demo catalog: ${config.seed.skus} SKUs x ${config.seed.locations} locations (${inserted} new stock rows)`);
} catch (err) {
  console.error(`error: ${errorMessage(err)}`);
  process.exitCode = 1;
} finally {
  await pool.end();
}
