"""collapseguard: provenance tags, entropy audits and stratified Parquet for pretraining text.

The code lives in the design card's folders (pipeline/, transforms/, models/), installed as
sub-packages of this one: ``collapseguard.pipeline``, ``collapseguard.transforms``,
``collapseguard.models``.
"""

__version__ = "0.1.0"
