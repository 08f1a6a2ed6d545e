"""collapseguard: provenance tags, entropy audits and stratified Parquet for pretraining text.

The code lives in the design card's folders (pipeline/, transforms/, models/), installed as
sub-packages of this one: ``collapseguard.pipeline``, ``collapseguard.transforms``,
``collapseguard.models``.
"""

__version__ = "0.1.0"

__all__ = ["Curate", "load_config"]


def __getattr__(name: str):
    """`collapseguard.Curate` and `collapseguard.load_config`, imported on first use: importing
    the package stays free of Beam and the models (the CLI's start-up pays only for what it runs)."""
    if name == "Curate":
        from collapseguard.pipeline.curate import Curate  # lazy: Beam and the graph, only when asked for

        return Curate
    if name == "load_config":
        from collapseguard.pipeline.config import load  # lazy: as above

        return load
    raise AttributeError(f"module 'collapseguard' has no attribute {name!r}")
