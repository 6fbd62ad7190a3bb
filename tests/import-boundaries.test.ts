/**
 * No product folder imports another product folder's internals (tools/check/import-boundaries.ts):
 * across gateway/, purchase/, stream-processors/ and connectors/ only the public entry modules
 * are imported.
 */
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../lib/config.ts';
import { boundaryViolations, importedSpecifiers, projectSources } from '../tools/check/import-boundaries.ts';

/** Known imports of internals still to be moved behind a public module: none left. */
const PENDING = new Set<string>();

describe('import boundaries between product folders', () => {
  it('the product folders import one another only through public entry modules', () => {
    expect(boundaryViolations(projectSources(PROJECT_ROOT), PENDING)).toEqual([]);
  });

  it('flags adapters/ and domain/ imports across folders, in every import form', () => {
    const sources = [
      { file: 'gateway/a.ts', text: "import { X } from '../connectors/inbound/adapters/pg-adjustments.ts';" },
      { file: 'gateway/domain/b.ts', text: "import type { Y } from '../../purchase/domain/request.ts';" },
      { file: 'stream-processors/c.ts', text: "export { Z } from '../gateway/domain/protocol.ts';" },
      { file: 'connectors/d.ts', text: "const m = await import('../stream-processors/adapters/redis-views.ts');" },
    ];
    expect(boundaryViolations(sources)).toEqual([
      { file: 'gateway/a.ts', imports: 'connectors/inbound/adapters/pg-adjustments.ts' },
      { file: 'gateway/domain/b.ts', imports: 'purchase/domain/request.ts' },
      { file: 'stream-processors/c.ts', imports: 'gateway/domain/protocol.ts' },
      { file: 'connectors/d.ts', imports: 'stream-processors/adapters/redis-views.ts' },
    ]);
  });

  it('lets through public entries, lib/, the same folder and files outside the product folders', () => {
    const sources = [
      { file: 'gateway/service.ts', text: "import { PurchaseService } from '../purchase/service.ts';\nimport { createAdjustmentApplier } from '../connectors/adjustments.ts';" },
      { file: 'gateway/a.ts', text: "import { redisKeys } from '../lib/contracts/redis-keys.ts';\nimport { Hub } from './hub.ts';\nimport { z } from 'zod';" },
      { file: 'tools/bench/x.ts', text: "import { AdjustmentStore } from '../../connectors/inbound/adapters/pg-adjustments.ts';" },
    ];
    expect(boundaryViolations(sources)).toEqual([]);
    expect(importedSpecifiers("import a from './a.ts'; export * from '../b.ts'; import('../c.ts'); import 'pkg';")).toEqual(['./a.ts', '../b.ts', '../c.ts']);
  });
});
