"""Online serving: export a trained run as a bundle, serve it over HTTP, ingest new items live.

Modules: bundle (format, validation), export (run -> bundle), catalog (ids, titles), linalg (ridge
content map, user fold-in), embedder / content (new item -> features -> vector, tokens), index
(faiss), wal (write-ahead log), tokens (token meanings), service (state), app (FastAPI), metrics.
"""
