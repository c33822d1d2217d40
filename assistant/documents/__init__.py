"""Documents shared by the reading and retrieval plugins: loading with provenance, token-aware chunking."""
