"""Company-name normalisation. Pure (no I/O, no asyncpg) so that the pure matcher can use it."""

from __future__ import annotations

import re
import unicodedata

# Words that vary between mentions of the same company ("Acme Ltd", "ACME Limited").
_SUFFIXES = re.compile(
    r"\b(limited|ltd|llp|plc|inc|incorporated|llc|uk|gmbh|co|company|corp|corporation|group)\b"
)


def name_key(name: str) -> str:
    """Normalised company name: one company is one seller, however its name is written."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    text = text.replace("&", " and ")
    text = re.sub(r"[^a-z0-9 ]+", " ", text)
    text = _SUFFIXES.sub(" ", text)
    text = re.sub(r"^the\s+", "", re.sub(r"\s+", " ", text).strip())
    return text.replace(" ", "") or name.strip().lower()
