"""The online recommender state behind the HTTP layer: items, users, index, tokens, log.

Every mutation runs validate -> embed -> build its log record (in the request) -> group commit:
append to the write-ahead log with fdatasync, then apply in memory (one writer thread), so what was
acknowledged is on disk, and replaying the log on start rebuilds exactly the acknowledged state.
Reads (recommend, item lookups) never wait for writers except for the index's short lock.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from motorec.errors import MotorecError
from motorec.serving.bundle import Bundle
from motorec.serving.commit import GroupCommitter
from motorec.serving.content import ContentEncoder, ItemContent
from motorec.serving.embedder import ItemEmbedder
from motorec.serving.index import IndexConfig, ItemIndex
from motorec.serving.linalg import fold_in
from motorec.serving.wal import DEFAULT_COMPACT_BYTES, WriteAheadLog, frame
from motorec.tokenizers.meaning import TokenExplainer, TokenIndex, Vocabulary

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"
_ID = re.compile(ID_PATTERN)
MAX_TOKEN_ITEMS = 50  # items listed by /tokens (words are counted over all of them)
MAX_LISTED_ONLINE = 1000  # a user's most recent online interactions listed by /users/{id}


class NotFound(MotorecError):
    """An id the service does not know (HTTP 404)."""


class Conflict(MotorecError):
    """An id that already exists (HTTP 409)."""


def _b64(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr, dtype="<f4").tobytes()).decode()


def _unb64(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").copy()


def check_id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise MotorecError(
            f"{what} id {value!r} is invalid: use 1-128 characters of letters, digits and . _ : - "
            f"starting with a letter or digit."
        )
    return value


class Vectors:
    """Append-only float32 rows with amortised growth (readers keep a consistent snapshot)."""

    def __init__(self, base: np.ndarray) -> None:
        self._data = np.array(base, dtype=np.float32)
        self.n = len(base)

    def append(self, row: np.ndarray) -> int:
        if self.n == len(self._data):
            grown = np.empty((max(16, 2 * len(self._data)), self._data.shape[1]), dtype=np.float32)
            grown[: self.n] = self._data[: self.n]
            self._data = grown
        self._data[self.n] = row
        self.n += 1
        return self.n - 1

    def __getitem__(self, idx: Any) -> np.ndarray:
        return self._data[: self.n][idx]

    def set(self, idx: int, row: np.ndarray) -> None:
        self._data[idx] = row


def calibration_queries(bundle: Bundle, n: int = 1000) -> np.ndarray:
    """A seeded sample of trained user vectors: what an approximate index is calibrated and checked on."""
    users = bundle.user_vectors
    return users[np.sort(np.random.default_rng(0).choice(len(users), size=min(n, len(users)), replace=False))]


class RecommenderService:
    """All serving state; thread-safe for concurrent readers and serialised writers."""

    def __init__(
        self,
        bundle: Bundle,
        wal_path: str | Path,
        preload_encoders: bool = True,
        repair_wal: bool = False,
        compact_bytes: int = DEFAULT_COMPACT_BYTES,
        compact_records: int = 0,
        index_config: IndexConfig = IndexConfig(),
    ) -> None:
        t0 = time.perf_counter()
        self.bundle = bundle
        m = bundle.manifest
        self.n_base_items = m["n_items"]
        self.fold = m["fold_in"]
        self.embedder = ItemEmbedder(bundle)
        self.content = ContentEncoder(bundle.modalities, bundle.feature_mean, bundle.catalog.text_template)
        if preload_encoders:
            self.content.preload()
        cat = bundle.catalog
        self.item_ids: list[str] = list(cat.item_ids)
        self.titles: list[str] = list(cat.titles)
        self.texts: list[str] = list(cat.texts)
        self.item_info: dict[int, dict[str, Any]] = {}  # extra facts of items ingested online
        self.item_index = {iid: i for i, iid in enumerate(cat.item_ids) if bundle.served[i]}
        self.vectors = Vectors(bundle.item_vectors)
        self.tokens: list[np.ndarray | None] = (
            list(bundle.item_tokens) if bundle.item_tokens is not None else [None] * self.n_base_items
        )
        self.token_index = TokenIndex(m["tokens"]["slots"]) if m.get("tokens") else None
        served = np.flatnonzero(bundle.served)
        if self.token_index is not None and bundle.item_tokens is not None:
            self.token_index.add_many(served, bundle.item_tokens[served])
            # the lists are shared, so items ingested later are explained too (newest first)
            self.explainer = TokenExplainer(
                self.token_index,
                self.item_ids,
                self.titles,
                self.texts,
                Vocabulary(cat.texts),
                keep=lambda i: self.item_ids[i] in self.item_index,
                order=lambda i: -i,
                item_fields=lambda i: {"new": i >= self.n_base_items},
            )
        self.index = ItemIndex.build(served, bundle.item_vectors[served], index_config, calibration_queries(bundle))
        self.user_ids: list[str] = list(cat.user_ids)
        self.user_index = {uid: u for u, uid in enumerate(cat.user_ids)}
        self.user_vectors = Vectors(bundle.user_vectors)
        self.user_prior_new = bundle.user_vectors.mean(0)
        self.online_seen: dict[int, list[int]] = {}
        self._pending: set[str] = set()  # item ids prepared but not yet applied
        self._pending_lock = threading.Lock()
        self.counters = {"items_ingested": 0, "interactions_added": 0, "users_created": 0}
        self.wal = WriteAheadLog(
            wal_path,
            bundle.fingerprint,
            repair=repair_wal,
            compact_bytes=compact_bytes,
            compact_records=compact_records,
        )
        replayed = 0
        for record in self.wal.replay():
            self._apply(record)
            replayed += 1
        self.replayed = replayed
        self.committer = GroupCommitter(self.wal, self._apply)
        self.started = time.time()
        self.startup_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------ reads
    def _user(self, user_id: str) -> int:
        if user_id not in self.user_index:
            raise NotFound(
                f"unknown user {user_id!r}: post interactions to /users/{{user_id}}/interactions to create it."
            )
        return self.user_index[user_id]

    def _item(self, item_id: str) -> int:
        if item_id not in self.item_index:
            raise NotFound(f"unknown item {item_id!r}.")
        return self.item_index[item_id]

    def seen(self, u: int) -> np.ndarray:
        ptr = self.bundle.seen_indptr
        base = self.bundle.seen_indices[ptr[u] : ptr[u + 1]] if u < len(ptr) - 1 else np.zeros(0, np.int64)
        online = self.online_seen.get(u)
        return np.concatenate([base, np.asarray(online, dtype=np.int64)]) if online else base

    def recommend(self, user_id: str, k: int = 20, exclude_seen: bool = True) -> dict[str, Any]:
        u = self._user(user_id)
        ids, scores, version = self.index.search(self.user_vectors[u], k, self.seen(u) if exclude_seen else None)
        items = [
            {"id": self.item_ids[i], "title": self.titles[i], "score": float(s), "new": bool(i >= self.n_base_items)}
            for i, s in zip(ids.tolist(), scores.tolist())
        ]
        return {"user_id": user_id, "items": items, "index_version": version}

    def item(self, item_id: str) -> dict[str, Any]:
        i = self._item(item_id)
        new = i >= self.n_base_items
        out: dict[str, Any] = {
            "id": item_id,
            "title": self.titles[i],
            "text": self.texts[i],
            "new": new,
            "train_interactions": 0 if new else int(self.bundle.item_degree[i]),
            "tokens": self._describe_tokens(self.tokens[i]),
        }
        out.update(self.item_info.get(i, {}))
        return out

    def _describe_tokens(self, codes: np.ndarray | None) -> list[dict] | None:
        if codes is None or self.token_index is None:
            return None
        return self.token_index.describe(codes)

    def token(self, modality: str, level: int, code: int, n_words: int = 10) -> dict[str, Any]:
        if self.token_index is None:
            raise NotFound("this bundle has no tokens: export it with --tokenizer (or from a token-based model).")
        try:
            return self.explainer.token(modality, level, code, MAX_TOKEN_ITEMS, n_words)
        except MotorecError as exc:
            raise NotFound(str(exc)) from exc

    def health(self) -> dict[str, Any]:
        m = self.bundle.manifest
        return {
            "status": "ok",
            "model": m["model"]["name"],
            "dataset": m["dataset"]["name"],
            "item_vectors": m["item_vectors"]["method"],
            "tokens": bool(self.token_index),
            "items_indexed": len(self.index),
            "index": self.index.kind,
            "items_new": len(self.item_ids) - self.n_base_items,
            "users": len(self.user_ids),
            "index_version": self.index.version,
            "wal_records": self.wal.records,
            "replayed_on_start": self.replayed,
            "uptime_seconds": round(time.time() - self.started, 3),
            "raw_content_modalities": sorted(self.content.raw),
            "wal": self.wal.status(),
        }

    def user(self, user_id: str) -> dict[str, Any]:
        u = self._user(user_id)
        online = self.online_seen.get(u, [])
        ptr = self.bundle.seen_indptr
        return {
            "user_id": user_id,
            "new": u >= len(self.bundle.catalog.user_ids),
            "train_interactions": int(ptr[u + 1] - ptr[u]) if u < len(ptr) - 1 else 0,
            "online_interactions": len(online),
            "online_items": [self.item_ids[i] for i in online[-MAX_LISTED_ONLINE:]],
        }

    def compact_log(self) -> Future:
        """Compact the write-ahead log now, on the writer thread (future of what it did)."""
        return self.committer.run_on_writer(self.wal.compact)

    # ----------------------------------------------------------------- writes
    def prepare_item(self, item_id: str, content: ItemContent, title: str | None = None) -> dict[str, Any]:
        """Validate, encode and embed a new item; reserves its id until `commit` resolves."""
        check_id(item_id, "item")
        with self._pending_lock:
            if item_id in self.item_index or item_id in self._pending:
                raise Conflict(f"item {item_id!r} already exists; item ids are unique and items are immutable.")
            self._pending.add(item_id)
        try:
            feats, imputed, text = self.content.encode(content)
            vector, tokens = self.embedder.embed(feats)
        except BaseException:
            self._release(item_id)
            raise
        return {
            "op": "item",
            "id": item_id,
            "title": title or "",
            "text": text or "",
            "imputed": imputed,
            "fields": content.fields,
            "features": {m: _b64(f) for m, f in feats.items()},
            "vector": _b64(vector),
            "tokens": None if tokens is None else tokens.tolist(),
            "t": time.time(),
        }

    def _release(self, item_id: str) -> None:
        with self._pending_lock:
            self._pending.discard(item_id)

    def commit(self, record: dict[str, Any]) -> Future:
        """Log durably, then apply; the future resolves to the index version after the apply."""
        fut = self.committer.submit(record, frame(record))
        if record["op"] == "item":
            fut.add_done_callback(lambda _: self._release(record["id"]))
        return fut

    def item_created(self, record: dict[str, Any], version: int) -> dict[str, Any]:
        tokens = None if record["tokens"] is None else np.asarray(record["tokens"])
        return {
            "id": record["id"],
            "tokens": self._describe_tokens(tokens),
            "imputed_modalities": record["imputed"],
            "index_version": version,
            "item_vectors": self.embedder.method,
        }

    def prepare_interactions(self, user_id: str, item_ids: list[str]) -> dict[str, Any]:
        check_id(user_id, "user")
        for iid in item_ids:
            self._item(iid)
        return {"op": "interactions", "user": user_id, "items": list(item_ids), "t": time.time()}

    def interactions_added(self, record: dict[str, Any]) -> dict[str, Any]:
        u = self.user_index[record["user"]]
        return {
            "user_id": record["user"],
            "new_user": u >= len(self.bundle.catalog.user_ids),
            "online_interactions": len(self.online_seen.get(u, [])),
        }

    def add_item(self, item_id: str, content: ItemContent, title: str | None = None) -> dict[str, Any]:
        """Blocking ingest (library use): recommendable once this returns."""
        record = self.prepare_item(item_id, content, title)
        return self.item_created(record, self.commit(record).result())

    def add_interactions(self, user_id: str, item_ids: list[str]) -> dict[str, Any]:
        record = self.prepare_interactions(user_id, item_ids)
        self.commit(record).result()
        return self.interactions_added(record)

    def _apply(self, record: dict[str, Any]) -> int:
        """Apply one logged record to memory (also used by replay); returns the index version."""
        if record["op"] == "item":
            vector = _unb64(record["vector"])
            i = self.vectors.append(vector)
            self.item_ids.append(record["id"])
            self.titles.append(record["title"])
            self.texts.append(record["text"])
            tokens = None if record["tokens"] is None else np.asarray(record["tokens"], dtype=np.int64)
            self.tokens.append(tokens)
            self.item_info[i] = {
                "imputed_modalities": record["imputed"],
                "fields": record.get("fields"),
                "created": record["t"],
            }
            if tokens is not None and self.token_index is not None:
                self.token_index.add(i, tokens)
            self.item_index[record["id"]] = i
            self.counters["items_ingested"] += 1
            return self.index.add(np.array([i]), vector[None, :])
        if record["op"] == "interactions":
            uid = record["user"]
            if uid not in self.user_index:
                self.user_index[uid] = self.user_vectors.append(self.user_prior_new)
                self.user_ids.append(uid)
                self.counters["users_created"] += 1
            u = self.user_index[uid]
            seen = self.online_seen.setdefault(u, [])
            seen.extend(i for i in dict.fromkeys(self.item_index[x] for x in record["items"]) if i not in seen)
            prior = self.bundle.user_vectors[u] if u < len(self.bundle.user_vectors) else self.user_prior_new
            self.user_vectors.set(u, fold_in(self.vectors[seen], prior, self.fold["target"], self.fold["reg"]))
            self.counters["interactions_added"] += len(record["items"])
            return self.index.version
        raise MotorecError(f"write-ahead log {self.wal.path}: unknown record type {record['op']!r}.")

    def close(self) -> None:
        self.committer.close()
        self.wal.close()
