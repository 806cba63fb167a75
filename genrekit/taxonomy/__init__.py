"""Genre trees: a canonical genre › style hierarchy shipped as data (FMA's taxonomy, CC BY 4.0; see
``NOTICE``), to roll styles up to genres (:mod:`genrekit.taxonomy.tree`)."""
