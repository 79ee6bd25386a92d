"""Knowledge-grounded answers: the knowledge base, hybrid first-stage retrieval
(BM25 + dense, fused), the cross-encoder reranker, and their evaluation."""
