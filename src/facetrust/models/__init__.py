"""Models: the pinned catalog, file preparation, and one module per network."""

from facetrust.models.catalog import CATALOG, InputSpec, ModelSpec, available_models, get_model_spec

__all__ = ["CATALOG", "InputSpec", "ModelSpec", "available_models", "get_model_spec"]
