// The two primitives Verify needs, SHA-256 and Ed25519, from WebCrypto when the page is a
// secure context that offers them, else from the vendored @noble bundle (vendor/noble.js).

let noble = null;
const loadNoble = () => (noble ??= import('../vendor/noble.js'));

function webCryptoEngine() {
  const subtle = crypto.subtle;
  return {
    name: 'WebCrypto',
    async sha256(bytes) {
      return new Uint8Array(await subtle.digest('SHA-256', bytes));
    },
    async verifyEd25519(publicKey, signature, message) {
      const key = await subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
      return subtle.verify({ name: 'Ed25519' }, key, signature, message);
    },
  };
}

async function nobleEngine() {
  const { sha256, ed25519 } = await loadNoble();
  return {
    name: 'noble',
    async sha256(bytes) {
      return sha256(bytes);
    },
    async verifyEd25519(publicKey, signature, message) {
      try {
        // zip215: false is RFC 8032's strict rule, as WebCrypto and Go's crypto/ed25519 apply it.
        return ed25519.verify(signature, message, publicKey, { zip215: false });
      } catch {
        return false; // a malformed key or signature does not verify
      }
    },
  };
}

/** Whether this browser's WebCrypto verifies Ed25519 (older browsers only hash). */
async function webCryptoHasEd25519() {
  try {
    const key = await crypto.subtle.importKey('raw', new Uint8Array(32).fill(1), { name: 'Ed25519' },
      false, ['verify']);
    return Boolean(key);
  } catch {
    return false;
  }
}

/**
 * The engine to verify with: `prefer` is 'noble' to force the bundle (the page's
 * `?crypto=noble`), otherwise WebCrypto when available. The result names what it used.
 */
export async function cryptoEngine(prefer) {
  const secure = window.isSecureContext && globalThis.crypto && crypto.subtle;
  if (prefer !== 'noble' && secure && (await webCryptoHasEd25519())) return webCryptoEngine();
  return nobleEngine();
}
