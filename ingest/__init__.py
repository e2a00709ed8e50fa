"""Catalog ingest: masters -> encode ladder -> catalog events; rights/takedown commands; synthetic catalog."""
