"""Text embeddings shared by the router, retrieval, shadow agreement and adapter selection."""
