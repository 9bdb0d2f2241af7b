"""Experiments: the comparisons, searches, ablations and tables behind the docs (`motorec exp ...`).

Top layer: experiments train and evaluate models through `motorec.training` and write tables; the
product commands never import from here.
"""
