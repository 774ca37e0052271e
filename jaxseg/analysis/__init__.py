"""Analysis tools that are not training: properties of losses and set functions (e.g. submodularity)."""
