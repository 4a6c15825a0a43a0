"""Training orchestration, between the store (rows and bytes) and rank (arrays and models): each
paper's term counts and the document frequencies (terms.py), the encoder's vectors (meaning.py),
and each subscriber's model kept current (models.py). Beside the pipeline, which calls it."""
