"""Engine side of the gateway: model preparation, vLLM engine tiers and their wire types."""
