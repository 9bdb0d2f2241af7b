"""Experiments: orchestration over training runs (top layer), one module per benchmark."""
