// RFC 6962 / RFC 9162 Merkle tree hashing: leaf and interior node hashes, and the root an
// inclusion proof leads to (RFC 9162 §2.1.3.2). Indexes are BigInt: bitwise operators on
// Numbers truncate to 32 bits.

import { concat } from './bytes.js';

const LEAF = Uint8Array.of(0x00);
const NODE = Uint8Array.of(0x01);

export const leafHash = (engine, entry) => engine.sha256(concat(LEAF, entry));
export const nodeHash = (engine, left, right) => engine.sha256(concat(NODE, left, right));

/**
 * The root of a tree of `size` leaves in which the leaf hash `leaf` sits at `index`,
 * recomputed from the audit path `proof` (lowest sibling first). Throws when the proof
 * has the wrong length for that index and size.
 */
export async function rootFromInclusionProof(engine, index, size, leaf, proof) {
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (fn < 0n || fn > sn) throw new Error(`leaf index ${index} is outside a tree of size ${size}`);
  if (leaf.length !== 32) throw new Error(`leaf hash is ${leaf.length} bytes, expected 32`);
  let r = leaf;
  for (const [i, p] of proof.entries()) {
    if (p.length !== 32) throw new Error(`proof hash ${i} is ${p.length} bytes, expected 32`);
    if (sn === 0n) throw new Error(`the proof has ${proof.length} hashes: longer than the path to the root`);
    if (fn & 1n || fn === sn) {
      r = await nodeHash(engine, p, r);
      while (!(fn & 1n) && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await nodeHash(engine, r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new Error(`the proof has ${proof.length} hashes: shorter than the path to the root`);
  return r;
}
