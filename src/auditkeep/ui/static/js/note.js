// C2SP signed notes (c2sp.org/signed-note), tlog-checkpoint bodies and Ed25519 verifier
// keys, parsed as src/auditkeep/log/note.py and checkpoint.py do.

import { concat, equal, fromBase64, fromHex, utf8 } from './bytes.js';

const SIG_PREFIX = '\u2014 '; // em dash, space
const CONTROL = /[\x00-\x09\x0b-\x1f]/; // ASCII controls other than newline
const ALG_ED25519 = 0x01;
// Go's limit, as note.py: a note with millions of signature lines must not cost millions of checks.
const MAX_SIGNATURES = 100;

/**
 * Split a signed note into its signed text (every line up to and including the newline
 * before the last empty line) and its signature lines `— <name> <base64(keyid4 || sig)>`.
 */
export function parseSignedNote(note) {
  if (CONTROL.test(note)) throw new Error('the note contains a control character');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new Error('the note has no empty line between its text and its signatures');
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (!block || !block.endsWith('\n')) throw new Error('the note does not end with signature lines and a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw new Error(`the note has ${lines.length} signature lines, at most ${MAX_SIGNATURES} allowed`);
  const signatures = lines.map((line, i) => {
    const where = `signature line ${i + 1}`;
    if (!line.startsWith(SIG_PREFIX)) throw new Error(`${where} does not start with an em dash and a space`);
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(' ');
    if (space <= 0) throw new Error(`${where} has no key name and signature`);
    const raw = fromBase64(rest.slice(space + 1));
    if (raw.length < 5) throw new Error(`${where}: the signature is ${raw.length} bytes`);
    return { name: rest.slice(0, space), keyId: raw.slice(0, 4), signature: raw.slice(4) };
  });
  return { text, signatures };
}

/** A tlog-checkpoint body: origin, decimal tree size, base64 root hash, extension lines. */
export function parseCheckpoint(text) {
  if (!text.endsWith('\n')) throw new Error('the checkpoint text does not end with a newline');
  const [origin, sizeText, rootText, ...extensions] = text.slice(0, -1).split('\n');
  if (!origin) throw new Error('checkpoint line 1: the origin is empty');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText ?? '')) {
    throw new Error(`checkpoint line 2: tree size ${JSON.stringify(sizeText)} is not a decimal number`);
  }
  let root;
  try {
    root = fromBase64(rootText ?? '');
  } catch (e) {
    throw new Error(`checkpoint line 3: the root hash is ${e.message}`);
  }
  if (root.length !== 32) throw new Error(`checkpoint line 3: the root hash is ${root.length} bytes, expected 32`);
  if (extensions.some((e) => !e)) throw new Error('the checkpoint has an empty extension line');
  return { origin, size: BigInt(sizeText), root, extensions };
}

/** The 4-byte C2SP key id of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || key)[:4]. */
export async function keyId(engine, name, publicKey) {
  const digest = await engine.sha256(concat(utf8(name), Uint8Array.of(0x0a, ALG_ED25519), publicKey));
  return digest.slice(0, 4);
}

/**
 * Parse a verifier key `name+hex8keyid+base64(0x01 || 32-byte key)` and check that its
 * key id is the one its name and key give.
 */
export async function parseVerifierKey(engine, vkey) {
  // The base64 key may itself hold '+': split at the first two only.
  const [name, hexId, keyB64] = String(vkey).match(/^([^+]*)\+([^+]*)\+(.*)$/s)?.slice(1)
    ?? (() => { throw new Error('a verifier key is <name>+<hex key id>+<base64 key>'); })();
  if (!/^[0-9a-fA-F]{8}$/.test(hexId)) throw new Error(`key id ${hexId} is not 8 hex digits`);
  const raw = fromBase64(keyB64);
  if (raw.length !== 33 || raw[0] !== ALG_ED25519) throw new Error('the key is not 0x01 and a 32-byte Ed25519 key');
  const publicKey = raw.slice(1);
  const id = fromHex(hexId);
  if (!equal(id, await keyId(engine, name, publicKey))) {
    throw new Error(`key id ${hexId} does not match the key ${name} publishes`);
  }
  return { name, keyId: id, publicKey, vkey: String(vkey) };
}
