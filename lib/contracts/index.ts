/**
 * Contracts shared by the product folders (stream-processors, gateway, purchase, connectors):
 * what one process writes and another reads. A product folder imports another's behaviour only
 * through its public entry point; shapes, key layouts and wire formats come from here.
 */
export * from './redis-keys.ts';
export * from './stock-view.ts';
export * from './feed.ts';
export * from './protocol.ts';
