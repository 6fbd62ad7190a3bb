// Types for cluster-key-slot (Redis Cluster's CRC16 key slot; the package ioredis itself uses).
declare module 'cluster-key-slot' {
  /** The slot (0..16383) of a key, honouring its hash tag. */
  function calculateSlot(key: string | Buffer): number;
  namespace calculateSlot {
    /** The slot all keys share, or -1 when they span slots. */
    function generateMulti(keys: Array<string | Buffer>): number;
  }
  export default calculateSlot;
}
