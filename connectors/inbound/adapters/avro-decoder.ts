/**
 * Decodes `stock.adjustments` messages: Confluent wire format (magic byte 0, 4-byte schema id,
 * Avro payload). The writer's schema is fetched from the registry by id (and cached by the
 * client); the payload is read through this consumer's READER schema (by default
 * schemas/avro/StockAdjustment.avsc) with Avro schema resolution, so a producer on an older or a
 * newer compatible schema version is read as the version this code knows: a field added with a
 * default is filled in for old writers, a field this code does not know is skipped.
 *
 * Errors are classified here, where they are made: a frame that is not Avro, an unknown schema
 * id, a payload that does not decode or a writer schema that cannot be resolved to the reader is
 * an InvalidMessageError (not retriable: the message goes to the DLQ); a registry that cannot be
 * reached is a TransientError (retriable: the batch is retried, nothing is dead-lettered for it).
 * The consumer asks `err instanceof InvalidMessageError` / `isRetriable(err)`, nothing else.
 */
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { fromRegistryError } from '../../../lib/driver-errors.ts';
import { errorMessage, InvalidMessageError, isRetriable, SchemaError } from '../../../lib/errors.ts';

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
          if (typeof w.fromBuffer !== 'function') throw new InvalidMessageError(`schema id ${schemaId} is not an Avro schema`);
          if (this.reader.equals(w)) return null;
          try {
            return this.reader.createResolver(w);
          } catch (err) {
            throw new InvalidMessageError(`schema id ${schemaId} cannot be read as ${this.reader.name ?? 'the reader schema'}: ${errorMessage(err)}`, { cause: err });
          }
        },
        (err: unknown) => {
          const e = fromRegistryError(err, `cannot fetch schema id ${schemaId} from the registry`);
          // The registry's definitive "no" (unknown id, not a schema) condemns the message.
          if (e instanceof SchemaError) throw new InvalidMessageError(e.message, { cause: err, ...(e.details ? { details: e.details } : {}) });
          throw e;
        },
      );
      // Only definitive answers are cached; a registry outage is asked again next time.
      r.catch((err: unknown) => {
        if (isRetriable(err)) this.resolvers.delete(schemaId);
      });
      this.resolvers.set(schemaId, r);
    }
    return r;
  }

  /** The record in the reader's shape; throws InvalidMessageError (dead-letter) or TransientError (retry). */
  async decode(buffer: Buffer | null): Promise<{ schemaId: number; value: unknown }> {
    if (!buffer || buffer.length === 0) throw new InvalidMessageError('empty message (no value)');
    if (buffer.length < 5 || buffer[0] !== 0) throw new InvalidMessageError('not a Confluent-framed Avro message (expected magic byte 0 and a 4-byte schema id)');
    const schemaId = buffer.readInt32BE(1);
    const resolver = await this.resolverFor(schemaId);
    try {
      const value = resolver === null ? this.reader.fromBuffer(buffer.subarray(5)) : this.reader.fromBuffer(buffer.subarray(5), resolver);
      return { schemaId, value };
    } catch (err) {
      throw new InvalidMessageError(`cannot decode Avro payload written with schema id ${schemaId}: ${errorMessage(err)}`, { cause: err });
    }
  }
}
