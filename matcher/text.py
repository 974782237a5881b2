"""Text normalisation shared by the index and the queries: tokens, stems, organisations, roles.

Tokenising is the cost of `fit` at scale, so it is one C-level regex per document and the
per-token Python work happens once per *distinct* token (stemming, stop words), not per token.
"""

from __future__ import annotations

import re
from functools import lru_cache

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from models.types import Brief, Seller

# Maximal runs of letters (with "+"/"#" for "c++", "c#") or of digits; a raw run becomes a
# token when at least 2 characters remain after leading "+"/"#" (see `canonical`). This splits
# "user-centred", "node.js" and reference codes: in "WP1448" or "FSA557" the letters name a
# buyer's series of briefs and recur across them, the number never does.
# matcher/tokenize.py implements the same runs with numpy for whole corpora.
TOKEN_RE = re.compile(r"[a-z+#]+|[0-9]+")
_CAMEL_RE = re.compile(r"(?<=[a-z])(?=[A-Z])")
_BRACKETS_RE = re.compile(r"[(\[][^)\]]*[)\]]")
_NON_WORD_RE = re.compile(r"[^a-z0-9]+")

# Words that carry no meaning in this domain on top of English stop words.
STOP_WORDS: frozenset[str] = frozenset(ENGLISH_STOP_WORDS) | {
    "ltd", "limited", "plc", "llp", "uk", "inc", "co", "eg", "ie", "etc", "will", "able",
}

# Words that appear in most briefs (in at least half of the 89 Digital Marketplace briefs of
# 2019-20), and the fragments the tokenizer makes of "end-to-end" and "GOV.UK": sharing them
# says nothing about a seller, so explanations never show them as the reason for a match.
GENERIC_TERMS: frozenset[str] = frozenset({
    "data", "delivery", "design", "digital", "experience", "including", "process", "project",
    "provide", "service", "standard", "support", "team", "user", "using", "work", "working",
    "end", "gov",
})

# Locations that mean "anywhere": a brief there needs no local seller; a seller there serves all.
ANYWHERE: frozenset[str] = frozenset(
    {"offsite", "off site", "remote", "anywhere", "any", "national", "nationwide", "uk",
     "united kingdom", "uk wide", "all", "no specific location"}
)


@lru_cache(maxsize=200_000)
def stem(token: str) -> str:
    """A deliberately light stemmer: plurals only (developers -> developer, services -> service).

    Heavier stemming merges words buyers keep apart (e.g. "design" / "designer").
    """
    if len(token) <= 3 or not token.isalpha():
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith("sses"):
        return token[:-2]
    if token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def canonical(raw: str) -> str:
    """The token a raw run stands for, or "" when it is too short to be one."""
    token = raw.lstrip("+#")
    return token if len(token) >= 2 else ""


@lru_cache(maxsize=200_000)
def term_of(raw: str) -> str:
    """Index term of a raw run: canonical, not a stop word, stemmed; "" when none."""
    token = canonical(raw)
    if not token or token in STOP_WORDS:
        return ""
    return stem(token)


def tokens(text: str) -> list[str]:
    """Tokens (lowercased, not stemmed, stop words kept)."""
    return [t for t in map(canonical, TOKEN_RE.findall(text.lower())) if t]


def terms(text: str) -> list[str]:
    """Index terms: stemmed tokens without stop words."""
    return [t for t in map(term_of, TOKEN_RE.findall(text.lower())) if t]


def norm_phrase(text: str) -> str:
    """Lowercase, split camelCase, punctuation to spaces ("technicalArchitect" -> 2 words)."""
    return _NON_WORD_RE.sub(" ", _CAMEL_RE.sub(" ", text).lower()).strip()


@lru_cache(maxsize=50_000)
def norm_org(name: str) -> str:
    """Normalise a buyer organisation so that spellings of one buyer compare equal.

    "Government Digital Services [GDS]" and "Government Digital Service" -> "government digital
    service"; "&" -> "and"; bracketed abbreviations and leading "the" dropped.
    """
    text = _BRACKETS_RE.sub(" ", name.lower().replace("&", " and "))
    words = [stem(w) for w in _NON_WORD_RE.sub(" ", text).split()]
    if words and words[0] == "the":
        words = words[1:]
    return " ".join(words)


def norm_role(role: str) -> str:
    return " ".join(stem(w) for w in norm_phrase(role).split())


def norm_location(location: str) -> str:
    return " ".join(norm_phrase(location).split())


def is_anywhere(location: str) -> bool:
    """True for "Offsite", "Remote", "No specific location, eg they can work remotely"..."""
    loc = norm_location(location)
    words = loc.split()
    return (loc in ANYWHERE or loc.startswith("no specific location")
            or "remote" in words or "remotely" in words)


def seller_text(seller: Seller) -> str:
    """What the seller's text vector is built from: profile, skills and past work."""
    # The name is left out: it says who, not what (and "Consulting" would match every brief).
    parts = [seller.summary, " ".join(seller.skills)]
    for cs in seller.case_studies:
        parts.append(cs.title)
        if cs.summary:
            parts.append(cs.summary)
        if cs.role:
            parts.append(norm_phrase(cs.role))
        if cs.organisation:  # who the work was for: buyers' names recur in later briefs
            parts.append(cs.organisation)
    return "\n".join(p for p in parts if p)


def brief_fields(brief: Brief) -> list[tuple[str, float]]:
    """The brief's text fields with their weights: the title says most about the work."""
    fields: list[tuple[str, float]] = [(brief.title, 2.0), (brief.summary, 1.0)]
    if brief.role:
        fields.append((norm_phrase(brief.role), 1.0))
    if brief.organisation:
        fields.append((brief.organisation, 1.0))
    fields.extend((s, 1.0) for s in brief.essential_skills)
    fields.extend((s, 0.5) for s in brief.nice_to_have_skills)
    return [(text, w) for text, w in fields if text]
