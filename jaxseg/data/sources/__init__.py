"""The datasets, one module each: built-in phantoms, a folder of images, COVID-QU-Ex, whole-slide images.

Each module's ``load(config, process_index, process_count)`` (``generate`` for the
phantoms) returns an ``ArraySource`` (``jaxseg.data.pipeline``); ``jaxseg.data``
holds the registry that picks one by ``config.data.name``.
"""
