"""Annotating a new corpus where the model is unsure: pick sentences (``suggest``), hand them to
Label Studio or doccano with the model's labels as pre-annotations, and bring the annotations
back into the corpus schema (``import-annotations``)."""
