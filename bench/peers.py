"""The engines a marketplace would pick instead of ours, each behind build() and search().

All index the same text (`bench.corpus.seller_text`) and receive the same query text
(`bench.corpus.brief_text`), return the top 50 ids, and run single-threaded. They do plain
scoring only: no hard filters, boosts or explanations (which ours includes).
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import bm25s
import tantivy
from bm25s.stopwords import STOPWORDS_EN

from bench.corpus import seller_text
from models.types import Seller

_TOKEN = re.compile(r"[^\W_]+")
_STOP = frozenset(STOPWORDS_EN)


def query_terms(text: str) -> list[str]:
    """Lowercased alphanumeric tokens, English stopwords removed, each once, in order.

    Both tantivy's default tokenizer and this split on non-alphanumerics and lowercase, so each
    term is a valid term query. Stopwords go because nobody would OR "the" into a BM25 query.
    """
    seen: dict[str, None] = {}
    for token in _TOKEN.findall(text.lower()):
        if len(token) > 1 and token not in _STOP and len(token) <= 40:
            seen.setdefault(token)
    return list(seen)


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class TantivyPeer:
    name = "tantivy BM25"
    memory_method = "index files (mmap)"

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="bench-tantivy-"))
        builder = tantivy.SchemaBuilder()
        builder.add_integer_field("id", stored=True, indexed=False, fast=False)
        builder.add_text_field("body", stored=False)
        self.schema = builder.build()
        self.index = tantivy.Index(self.schema, path=str(self._dir))
        self.memory_bytes = 0

    def build(self, sellers: Sequence[Seller]) -> None:
        writer = self.index.writer(heap_size=512_000_000, num_threads=1)
        for s in sellers:
            writer.add_document(tantivy.Document(id=s.id, body=seller_text(s)))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.searcher = self.index.searcher()
        self.memory_bytes = _dir_size(self._dir)

    def search(self, text: str, k: int = 50) -> list[int]:
        clauses = [
            (tantivy.Occur.Should, tantivy.Query.term_query(self.schema, "body", term))
            for term in query_terms(text)
        ]
        query = tantivy.Query.boolean_query(clauses)
        hits = self.searcher.search(query, k).hits
        return [self.searcher.doc(addr)["id"][0] for _, addr in hits]

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


def _bm25s_bytes(retriever: Any) -> int:
    """The index's score matrix (numpy CSC arrays) plus its vocabulary dict."""
    arrays = sum(int(getattr(v, "nbytes", 0)) for v in retriever.scores.values())
    vocab = retriever.vocab_dict
    return arrays + sys.getsizeof(vocab) + sum(sys.getsizeof(k) + 28 for k in vocab)


class Bm25sPeer:
    name = "bm25s"
    memory_method = "nbytes of score arrays + vocab dict"

    def __init__(self) -> None:
        self.memory_bytes = 0

    def build(self, sellers: Sequence[Seller]) -> None:
        self.ids = [s.id for s in sellers]
        texts = [seller_text(s) for s in sellers]
        tokens = bm25s.tokenize(texts, stopwords="en", show_progress=False)
        self.retriever = bm25s.BM25()
        self.retriever.index(tokens, show_progress=False)
        del tokens, texts
        self.vocab = self.retriever.vocab_dict
        self.memory_bytes = _bm25s_bytes(self.retriever)

    def search(self, text: str, k: int = 50) -> list[int]:
        terms = [t for t in query_terms(text) if t in self.vocab]
        if not terms:
            return []
        docs, _ = self.retriever.retrieve(
            [terms], k=min(k, len(self.ids)), show_progress=False, n_threads=1
        )
        return [self.ids[i] for i in docs[0]]

    def close(self) -> None:
        pass


class PostgresFtsPeer:
    """A GIN index on a stored tsvector, ranked by ts_rank_cd; the brief's terms OR-ed."""

    name = "PostgreSQL FTS"
    memory_method = "GIN index + tsvector column (on disk)"
    table = "bench_fts"

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.memory_bytes = 0

    async def build(self, sellers: Sequence[Seller]) -> None:
        conn = self.conn
        await conn.execute(f"DROP TABLE IF EXISTS {self.table}")
        await conn.execute(
            f"CREATE TABLE {self.table} (id bigint PRIMARY KEY, body text NOT NULL,"
            " tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', body)) STORED)"
        )
        await conn.copy_records_to_table(
            self.table, records=[(s.id, seller_text(s)) for s in sellers], columns=("id", "body")
        )
        await conn.execute(f"CREATE INDEX {self.table}_tsv ON {self.table} USING gin (tsv)")
        await conn.execute(f"ANALYZE {self.table}")
        size: Any = await conn.fetchval(
            f"SELECT pg_relation_size('{self.table}_tsv') + (SELECT sum(pg_column_size(tsv))"
            f" FROM {self.table})"
        )
        self.memory_bytes = int(size or 0)

    async def search(self, text: str, k: int = 50) -> list[int]:
        # websearch_to_tsquery accepts any input safely; "a or b" gives a | b.
        terms = " or ".join(query_terms(text))
        rows = await self.conn.fetch(
            f"SELECT id FROM {self.table}, websearch_to_tsquery('english', $1) q"
            " WHERE tsv @@ q ORDER BY ts_rank_cd(tsv, q) DESC LIMIT $2",
            terms,
            k,
        )
        return [r["id"] for r in rows]

    async def close(self) -> None:
        await self.conn.execute(f"DROP TABLE IF EXISTS {self.table}")
