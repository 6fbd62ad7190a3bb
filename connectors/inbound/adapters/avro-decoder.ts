/**
 * Decodes `stock.adjustments` messages: Confluent wire format (magic byte 0, 4-byte schema id,
 * Avro payload). The writer's schema is fetched from the registry by id (and cached by the
 * client); the payload is read through this consumer's READER schema (by default
 * schemas/avro/StockAdjustment.avsc) with Avro schema resolution, so a producer on an older or a
 * newer compatible schema version is read as the version this code knows: a field added with a
 * default is filled in for old writers, a field this code does not know is skipped.
 *
 * A frame that is not Avro, an unknown schema id, a payload that does not decode or a writer
 * schema that cannot be resolved to the reader is a SchemaError: the message goes to the DLQ.
 * A registry that cannot be reached is a TransientError: the batch is retried, nothing is
 * dead-lettered for it.
 */
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { errorMessage, SchemaError, TransientError } from '../../../lib/errors.ts';

const NETWORK_FAILURE = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|socket hang up|timeout/i;

export class AvroRecordDecoder {
  private readonly registry: SchemaRegistry;
  private readonly reader: avro.Type;
  /** Per writer schema id: how to read its payloads as the reader (null: same schema). */
  private readonly resolvers = new Map<number, Promise<avro.Resolver | null>>();

  constructor(deps: { registry: SchemaRegistry; readerSchema: object }) {
    this.registry = deps.registry;
    this.reader = avro.Type.forSchema(deps.readerSchema as avro.Schema);
  }

  private resolverFor(schemaId: number): Promise<avro.Resolver | null> {
    let r = this.resolvers.get(schemaId);
    if (!r) {
      r = this.registry.getSchema(schemaId).then(
        (writer) => {
          const w = writer as unknown as avro.Type;
          if (typeof w.fromBuffer !== 'function') throw new SchemaError(`schema id ${schemaId} is not an Avro schema`);
          if (this.reader.equals(w)) return null;
          try {
            return this.reader.createResolver(w);
          } catch (err) {
            throw new SchemaError(`schema id ${schemaId} cannot be read as ${this.reader.name ?? 'the reader schema'}: ${errorMessage(err)}`, { cause: err });
          }
        },
        (err: unknown) => {
          const status = (err as { status?: unknown } | null)?.status;
          const message = `cannot fetch schema id ${schemaId} from the registry: ${errorMessage(err)}`;
          if (typeof status === 'number' && status >= 400 && status < 500 && !NETWORK_FAILURE.test(errorMessage(err))) throw new SchemaError(message, { cause: err });
          throw new TransientError(message, { cause: err });
        },
      );
      // Only definitive answers are cached; a registry outage is asked again next time.
      r.catch((err: unknown) => {
        if (err instanceof TransientError) this.resolvers.delete(schemaId);
      });
      this.resolvers.set(schemaId, r);
    }
    return r;
  }

  /** The record in the reader's shape; throws SchemaError (dead-letter) or TransientError (retry). */
  async decode(buffer: Buffer | null): Promise<{ schemaId: number; value: unknown }> {
    if (!buffer || buffer.length === 0) throw new SchemaError('empty message (no value)');
    if (buffer.length < 5 || buffer[0] !== 0) throw new SchemaError('not a Confluent-framed Avro message (expected magic byte 0 and a 4-byte schema id)');
    const schemaId = buffer.readInt32BE(1);
    const resolver = await this.resolverFor(schemaId);
    try {
      const value = resolver === null ? this.reader.fromBuffer(buffer.subarray(5)) : this.reader.fromBuffer(buffer.subarray(5), resolver);
      return { schemaId, value };
    } catch (err) {
      throw new SchemaError(`cannot decode Avro payload written with schema id ${schemaId}: ${errorMessage(err)}`, { cause: err });
    }
  }
}
