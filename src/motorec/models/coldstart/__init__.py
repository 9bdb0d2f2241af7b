"""Cold-start specialists: each learns from warm items how to place a zero-shot item from its content.

One file per method, the shared pieces (backbone, content input, warm/cold readout) in `common.py`;
papers, equations and measured results in docs/coldstart.md.
"""

from motorec.models.coldstart import aldi, cgrc, clcrec, deepmusic, dropoutnet, gar, gorec, heater  # noqa: F401  (register)
