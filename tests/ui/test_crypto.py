"""The browser's merkle.js and note.js against the RFC 6962 and signed-note corpora that
tests/log runs against the Python code, with each crypto engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import ServerProcess

if TYPE_CHECKING:
    from playwright.sync_api import Page

DATA = Path(__file__).parent.parent / "data"
RFC6962 = json.loads((DATA / "rfc6962" / "rfc6962_vectors.json").read_text())
NOTES = json.loads((DATA / "signed-note" / "signed_note_vectors.json").read_text())

# Each returns the ids of the vectors whose outcome differs from the expected one.
INCLUSION = """async ([engineName, vectors]) => {
  const { cryptoEngine } = await import('/static/js/crypto.js');
  const { rootFromInclusionProof } = await import('/static/js/merkle.js');
  const { fromHex, equal } = await import('/static/js/bytes.js');
  const engine = await cryptoEngine(engineName);
  const wrong = [];
  for (const [i, v] of vectors.entries()) {
    let valid;
    try {
      const root = await rootFromInclusionProof(engine, v.leaf_index, v.tree_size,
        fromHex(v.leaf_hash), v.proof.map(fromHex));
      valid = equal(root, fromHex(v.root));
    } catch {
      valid = false;
    }
    if (valid !== v.want_valid) wrong.push(v.desc ?? `#${i} ${v.leaf_index}/${v.tree_size}`);
  }
  return [engine.name, wrong];
}"""

# golang.org/x/mod/sumdb/note Open semantics: a signature by a known key must verify,
# and at least one must.
OPEN = """async ([engineName, notes, goodKeys, badKeys]) => {
  const { cryptoEngine } = await import('/static/js/crypto.js');
  const { parseSignedNote, parseVerifierKey } = await import('/static/js/note.js');
  const { toHex, utf8 } = await import('/static/js/bytes.js');
  const engine = await cryptoEngine(engineName);
  const wrong = [];
  for (const vkey of goodKeys) {
    try {
      await parseVerifierKey(engine, vkey);
    } catch (e) {
      wrong.push(`good key ${vkey}: ${e.message}`);
    }
  }
  for (const vkey of badKeys) {
    let parsed = true;
    try { await parseVerifierKey(engine, vkey); } catch { parsed = false; }
    if (parsed) wrong.push(`bad key accepted: ${vkey}`);
  }
  for (const n of notes) {
    let ok;
    try {
      const text = n.note ?? new TextDecoder('utf-8', { fatal: true })
        .decode(Uint8Array.from(atob(n.note_b64), (c) => c.charCodeAt(0)));
      const note = parseSignedNote(text);
      const keys = await Promise.all(n.verifier_keys.map((k) => parseVerifierKey(engine, k)));
      let verified = 0;
      for (const sig of note.signatures) {
        const key = keys.find((k) => k.name === sig.name && toHex(k.keyId) === toHex(sig.keyId));
        if (!key) continue;
        const good = await engine.verifyEd25519(key.publicKey, sig.signature, utf8(note.text));
        if (!good) throw new Error('bad signature');
        verified += 1;
      }
      ok = verified > 0;
    } catch {
      ok = false;
    }
    if (ok !== n.expect.ok) wrong.push(n.id);
  }
  return [engine.name, wrong];
}"""


@pytest.fixture(scope="module")
def origin_page(browser: Any, ui_server: ServerProcess) -> Any:
    context = browser.new_context()
    page = context.new_page()
    page.goto(ui_server.url + "/signin")
    yield page
    context.close()


@pytest.mark.parametrize(("engine", "name"), [(None, "WebCrypto"), ("noble", "noble")])
class TestVectors:
    def test_inclusion_proofs(self, origin_page: Page, engine: str | None, name: str) -> None:
        vectors = RFC6962["inclusion_proofs"] + RFC6962["inclusion_probes"]
        assert any(not v["want_valid"] for v in vectors)
        assert origin_page.evaluate(INCLUSION, [engine, vectors]) == [name, []]

    def test_signed_notes_and_keys(self, origin_page: Page, engine: str | None, name: str) -> None:
        good = [k["vkey"] for k in NOTES["verifier_keys"]]
        bad = [k["vkey"] for k in NOTES["bad_verifier_keys"]]
        got = origin_page.evaluate(OPEN, [engine, NOTES["notes"], good, bad])
        assert got == [name, []]

    def test_leaf_hashes(self, origin_page: Page, engine: str | None, name: str) -> None:
        got = origin_page.evaluate("""async ([engineName, leaves]) => {
          const { cryptoEngine } = await import('/static/js/crypto.js');
          const { leafHash } = await import('/static/js/merkle.js');
          const { fromHex, toHex } = await import('/static/js/bytes.js');
          const engine = await cryptoEngine(engineName);
          return Promise.all(leaves.map(async (l) => toHex(await leafHash(engine, fromHex(l)))));
        }""", [engine, RFC6962["leaves"]])
        assert got == RFC6962["leaf_hashes"]
