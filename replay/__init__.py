"""The replay audit: recompute royalty statements from the log (topics, archive or a file)."""
