/** `npm run migrate`: applies pending SQL migrations to PG_URL. Safe to run any number of times. */
import { loadConfigOrExit } from '../../lib/config.ts';
import { errorMessage } from '../../lib/errors.ts';
import { migrate } from '../../lib/migrate.ts';

const config = loadConfigOrExit();
try {
  const res = await migrate(config.pg.url, { onApply: (m) => console.log(`applied ${m.version}_${m.name}.sql`) });
  console.log(res.applied.length ? `${res.applied.length} migration(s) applied` : `up to date (${res.alreadyApplied.length} applied earlier)`);
} catch (err) {
  console.error(`error: ${errorMessage(err)}`);
  process.exit(1);
}
