// The only entry point of the vendored crypto bundle: what the UI's verify code needs
// when WebCrypto (SHA-256, Ed25519) is unavailable, e.g. on plain http:// to a non-localhost host.
export { sha256 } from '@noble/hashes/sha2.js';
export { ed25519 } from '@noble/curves/ed25519.js';
