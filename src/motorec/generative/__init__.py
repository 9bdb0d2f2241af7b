"""Downstream tasks over semantic IDs: TIGER-style generative retrieval (with SASRec as the item-ID
baseline) and DCN-V2 rating prediction with item-ID vs semantic-ID features. See docs/generative.md."""
