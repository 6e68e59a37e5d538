"""The dataset contract between stages: the folder layout and manifest (:mod:`.manifest`), the table schemas
(:mod:`dataprep.dataset.schemas`), the canonical sample keys (:mod:`.keys`) and the one reader every consumer uses
(:mod:`.reader`: ``bench evaluate``'s source, ``bench train``'s pairs, ``dataprep info``)."""
