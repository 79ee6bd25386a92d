"""HTTP edge of the routing gateway: OpenAI protocol, errors, streaming, orchestration, CLI."""
