// Verify one event in the browser, trusting nothing the server says it checked: hash the
// canonical entry, recompute the Merkle root from the inclusion proof, check the signed
// checkpoint names that root, and check its Ed25519 signature with the published key.

import { equal, fromBase64, fromHex, short, toBase64, toHex, utf8 } from './bytes.js';
import { leafHash, rootFromInclusionProof } from './merkle.js';
import { parseCheckpoint, parseSignedNote, parseVerifierKey } from './note.js';

const isCommitment = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
  && Object.keys(v).length === 1 && typeof v.$c === 'string';

/**
 * Compare the hashed entry with the record the page shows. Personal fields are salted
 * commitments `{"$c": hex}` in the entry; the record may show the value instead, which
 * cannot be checked without the salt, so those paths are listed apart.
 */
export function compareEntry(entry, record) {
  const out = { equal: 0, mismatches: [], commitments: [] };
  const walk = (e, r, path) => {
    if (isCommitment(e)) {
      out.commitments.push(path);
      if (!(typeof r === 'string' || (isCommitment(r) && r.$c === e.$c))) out.mismatches.push(path);
    } else if (Array.isArray(e)) {
      if (!Array.isArray(r) || r.length !== e.length) out.mismatches.push(path);
      else e.forEach((item, i) => walk(item, r[i], `${path}/${i}`));
    } else if (e !== null && typeof e === 'object') {
      if (r === null || typeof r !== 'object' || Array.isArray(r)) {
        out.mismatches.push(path);
        return;
      }
      for (const k of new Set([...Object.keys(e), ...Object.keys(r)])) {
        const p = `${path}/${k}`;
        if (!(k in e) || !(k in r)) out.mismatches.push(p);
        else walk(e[k], r[k], p);
      }
    } else if (e === r) {
      out.equal += 1;
    } else {
      out.mismatches.push(path);
    }
  };
  walk(entry, record, '');
  return out;
}

/** The step list Verify shows, in order; `optional` steps appear only when they apply. */
export const STEPS = [
  { id: 'leaf', title: 'The canonical entry hashes to the leaf in the proof' },
  { id: 'fields', title: 'The entry holds what this page shows' },
  { id: 'checkpoint', title: 'The signed checkpoint is for this log at the proof’s tree size' },
  { id: 'root', title: 'The inclusion proof leads from the leaf to the checkpoint’s root' },
  { id: 'signature', title: 'The checkpoint’s Ed25519 signature verifies with the log’s key' },
  { id: 'raw', title: 'The producer’s original object hashes to raw.sha256 in the entry', optional: true },
];

/**
 * Run every step, calling `report({id, ok, details})` as each ends (ok: true, false, or
 * null when it could not run). Returns whether all passed.
 *
 * `event` is the answer of GET /v1/events/{id}; `io` fetches the canonical entry, the
 * published keys and the raw object; `pins` maps a checkpoint origin to a pinned vkey.
 */
export async function verifyEvent(event, io, engine, pins, report) {
  const { record, proof, receipt } = event;
  const results = new Map();
  const done = (id, ok, details) => {
    results.set(id, ok);
    report({ id, ok, details });
  };
  const attempt = async (id, fn) => {
    try {
      await fn();
    } catch (e) {
      done(id, false, [String(e.message ?? e)]);
    }
  };

  const log = record.tenant;
  let leaf = null;
  await attempt('leaf', async () => {
    const bytes = await io.entry(log, proof.seq);
    leaf = await leafHash(engine, bytes);
    const claimed = fromBase64(proof.leaf_hash);
    const ok = equal(leaf, claimed) && receipt.leaf_hash === proof.leaf_hash && receipt.seq === proof.seq;
    done('leaf', ok, [
      `SHA-256(0x00 ‖ ${bytes.length} bytes of entry ${proof.seq} of log ${log}) = ${toBase64(leaf)}`,
      `the proof and the receipt name ${proof.leaf_hash}`,
      ok ? 'they are equal' : 'they differ: the stored entry is not the one that was logged',
    ]);
    await attempt('fields', async () => {
      const cmp = compareEntry(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)), record);
      const details = [`${cmp.equal} values are equal`];
      if (cmp.commitments.length) {
        details.push(`${cmp.commitments.length} personal fields are salted commitments in the entry `
          + `(${cmp.commitments.join(', ')}); their shown values cannot be checked here`);
      }
      if (cmp.mismatches.length) details.push(`different or missing: ${cmp.mismatches.join(', ')}`);
      done('fields', cmp.mismatches.length === 0, details);
    });
  });
  if (!results.has('fields')) done('fields', null, ['needs the entry']);

  let checkpoint = null;
  let note = null;
  await attempt('checkpoint', async () => {
    note = parseSignedNote(event.checkpoint);
    checkpoint = parseCheckpoint(note.text);
    const sizeOk = checkpoint.size === BigInt(proof.tree_size);
    const originOk = checkpoint.origin.split('/').pop() === log;
    done('checkpoint', sizeOk && originOk, [
      `origin ${checkpoint.origin} ${originOk ? 'names' : 'does not name'} log ${log}`,
      `tree size ${checkpoint.size} ${sizeOk ? '=' : '≠'} the proof’s tree size ${proof.tree_size}`,
    ]);
  });

  await attempt('root', async () => {
    if (!leaf || !checkpoint) {
      done('root', null, ['needs the leaf hash and the checkpoint']);
      return;
    }
    const path = proof.hashes.map((h) => fromBase64(h));
    const root = await rootFromInclusionProof(engine, proof.seq, proof.tree_size, leaf, path);
    const ok = equal(root, checkpoint.root);
    done('root', ok, [
      `leaf ${proof.seq} of ${proof.tree_size}, ${path.length} proof hashes → root ${toBase64(root)}`,
      `the checkpoint’s root is ${toBase64(checkpoint.root)}`,
      ok ? 'they are equal' : 'they differ',
    ]);
  });

  await attempt('signature', async () => {
    if (!note || !checkpoint) {
      done('signature', null, ['needs the checkpoint']);
      return;
    }
    const keys = await io.keys();
    const details = [];
    let verified = false;
    for (const sig of note.signatures.filter((s) => s.name === checkpoint.origin)) {
      const published = keys.filter((k) => k.name === sig.name && String(k.key_id).toLowerCase() === toHex(sig.keyId));
      for (const k of published) {
        const key = await parseVerifierKey(engine, k.verifier);
        const pinned = pins[checkpoint.origin];
        if (pinned && pinned !== key.vkey) {
          details.push(`key ${key.name}+${toHex(key.keyId)} is not the key pinned for ${checkpoint.origin}`);
          continue;
        }
        const ok = await engine.verifyEd25519(key.publicKey, sig.signature, utf8(note.text));
        details.push(`${engine.name}: signature by ${key.name}+${toHex(key.keyId)} over the `
          + `${utf8(note.text).length}-byte note text ${ok ? 'verifies' : 'does NOT verify'}`);
        details.push(pinned ? 'the key is the one pinned in this browser'
          : 'the key is the one GET /v1/keys publishes (not pinned in this browser)');
        if (!ok) {
          done('signature', false, details);
          return;
        }
        verified = true;
      }
    }
    if (!verified && !details.length) {
      details.push(`no signature line of ${checkpoint.origin} matches a published key`);
    }
    done('signature', verified, details);
  });

  if (record.raw) {
    await attempt('raw', async () => {
      const raw = await io.raw();
      const digest = await engine.sha256(raw);
      const ok = equal(digest, fromHex(record.raw.sha256));
      done('raw', ok, [`SHA-256 of ${raw.length} bytes = ${short(digest)}; the entry says ${record.raw.sha256.slice(0, 16)}…`]);
    });
  }
  return [...results.values()].every((ok) => ok === true);
}
