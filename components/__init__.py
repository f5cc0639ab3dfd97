"""The pipeline steps, one package ("room") per step; shared code in components.common."""
