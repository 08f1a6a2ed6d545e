"""The bottom layer: the vocabulary every other layer shares (the output schema, strata and
provenance names, versions, salted hashing, config field helpers). It imports nothing of ours."""
