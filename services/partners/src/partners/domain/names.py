"""Identity rules of an organization: the ROR id and the normalised name duplicates are found by."""

from __future__ import annotations

import re
import unicodedata

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_ROR = re.compile(r"^(?:https?://ror\.org/)?(0[0-9a-hjkmnp-tv-z]{6}[0-9]{2})$")


def ror_id(value: str) -> str:
    """The canonical ROR id (`0` + six Crockford base-32 characters + a two-digit ISO 7064 Mod 97-10
    checksum, lower case) of `value`, given bare or as its `https://ror.org/` URL; ValueError if it is none."""
    match = _ROR.match(value.strip().lower())
    if not match:
        raise ValueError("not a ROR id: `0`, six base-32 characters and two check digits (e.g. `03wnrjx87`)")
    ident = match.group(1)
    number = 0
    for char in ident[1:7]:
        number = number * 32 + _CROCKFORD.index(char)
    if int(ident[7:]) != 98 - (number * 100) % 97:
        raise ValueError("the ROR id's check digits do not match")
    return ident


# Words that do not tell two organizations apart: legal forms and articles (English, German, French).
_NOISE = frozenset(
    [
        "the",
        "and",
        "of",
        "inc",
        "incorporated",
        "ltd",
        "limited",
        "llc",
        "plc",
        "co",
        "corp",
        "corporation",
        "gmbh",
        "ev",
        "e",
        "v",
        "ag",
        "sa",
        "srl",
        "bv",
        "nv",
        "oy",
        "ab",
    ]
)
_ZH_SUFFIXES = ("有限责任公司", "有限公司", "股份公司", "公司")


def name_key(name: str) -> str:
    """A name as duplicates are compared: case, accents, punctuation and legal suffixes left out
    ("The Royal Society, Inc." and "royal society" meet); CJK characters are kept as they are."""
    text = unicodedata.normalize("NFKC", name).casefold()
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    for suffix in _ZH_SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
            break
    words = re.findall(r"\w+", text)
    kept = [w for w in words if w not in _NOISE] or words
    return " ".join(kept)[:300]
