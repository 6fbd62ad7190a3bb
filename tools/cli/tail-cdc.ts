/**
 * `npm run tail [-- --from-beginning]`: prints committed stock changes as they come off the CDC
 * topic, without starting anything. Ctrl-C stops it.
 */
import { loadConfigOrExit } from '../../lib/config.ts';
import { errorMessage } from '../../lib/errors.ts';
import { createKafka } from '../../lib/kafka.ts';
import { createLogger } from '../../lib/logger.ts';
import { TOPICS } from '../../lib/topics.ts';
import { startCdcTail } from '../../stream-processors/cdc-tail.ts';

const config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, name: 'invsync-tail' });
try {
  const tail = await startCdcTail({
    kafka: createKafka({ connection: config.kafka, clientId: 'invsync-tail', logger }),
    logger,
    write: (line) => process.stdout.write(`${line}\n`),
    fromBeginning: process.argv.includes('--from-beginning'),
  });
  process.stdout.write(`tailing ${TOPICS.cdcStockLevels} on ${config.kafka.brokers.join(',')}; Ctrl-C to stop\n`);
  const stop = () => void tail.stop().finally(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} catch (err) {
  process.stderr.write(`error: cannot tail ${TOPICS.cdcStockLevels}: ${errorMessage(err)} (is the stack up? npm run stack -- status)\n`);
  process.exit(1);
}
