/**
 * Regenerates schemas/generated/avro-types.ts from schemas/avro/*.avsc (the source of truth).
 * Run after changing a schema: `npx tsx tools/cli/gen-avro-types.ts`. The unit test
 * lib/avro-codegen.test.ts fails while the committed output is out of date.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GENERATED_TYPES_FILE, generateTypes, readAvroSchemaFiles } from '../../lib/avro-codegen.ts';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { errorMessage } from '../../lib/errors.ts';

try {
  const schemas = readAvroSchemaFiles(PROJECT_ROOT);
  const output = generateTypes(schemas);
  const target = path.join(PROJECT_ROOT, GENERATED_TYPES_FILE);
  const before = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : undefined;
  if (before === output) {
    console.log(`${GENERATED_TYPES_FILE} is up to date (${schemas.length} schema files)`);
  } else {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, output);
    console.log(`wrote ${GENERATED_TYPES_FILE} from ${schemas.length} schema files`);
  }
} catch (err) {
  console.error(`error: ${errorMessage(err)}`);
  process.exit(1);
}
