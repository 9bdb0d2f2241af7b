"""motorec: cold-start recommendation through multimodal semantic tokens."""

__version__ = "0.1.0"

import warnings as _warnings

# torch labels sparse CSR as beta on every construction; motorec builds its CSR tensors itself.
_warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
_warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")

# The Python API (motorec.api) imports torch; it is loaded on first use so that `import motorec`
# and the CLI's start stay fast.
_API = ("Run", "load_dataset", "train", "load_run", "compare")


def __getattr__(name: str):
    if name in _API:
        from motorec import api

        return getattr(api, name)
    raise AttributeError(f"module 'motorec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))


__all__ = ["__version__", *_API]
