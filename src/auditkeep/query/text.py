"""Free-text tokens, the way the index's FTS5 `unicode61` tokenizer cuts and folds them.

Letters and digits (Unicode categories L*, N* and Co) make tokens; everything else
separates them; tokens are lower-cased with diacritics removed. The SQL back end lets
FTS5 do this; the in-memory predicate needs the same answer, which this gives for
every Latin-script text (the property test's alphabet) and approximates beyond it.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache


@lru_cache(maxsize=4096)
def _fold(c: str) -> str:
    base = "".join(ch for ch in unicodedata.normalize("NFD", c)
                   if not unicodedata.combining(ch))
    return (base or c).lower()


def _is_token_char(c: str) -> bool:
    cat = unicodedata.category(c)
    return cat[0] in "LN" or cat == "Co"


def tokens(text: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    for c in text:
        if c.isascii():
            if c.isalnum():
                cur.append(c.lower())
                continue
        elif _is_token_char(c):
            cur.append(_fold(c))
            continue
        if cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return out


def contains_phrase(doc: list[str], phrase: list[str], prefix: bool) -> bool:
    """True if `phrase` occurs in `doc` as adjacent tokens (the last one as a prefix
    when `prefix`)."""
    n = len(phrase)
    if n == 0:
        return False
    *head, last = phrase
    for i in range(len(doc) - n + 1):
        if doc[i:i + n - 1] == head:
            t = doc[i + n - 1]
            if t == last or (prefix and t.startswith(last)):
                return True
    return False


def fts_expression(phrase: list[str], prefix: bool) -> str:
    """An FTS5 MATCH string for one phrase of our tokens (letters and digits only, so
    quoting is safe)."""
    return '"' + " ".join(phrase) + '"' + ("*" if prefix else "")
