"""motorec: cold-start recommendation through multimodal semantic tokens."""

__version__ = "0.1.0"

import warnings as _warnings

# torch labels sparse CSR as beta on every construction; motorec builds its CSR tensors itself.
_warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
_warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
