"""Batch jobs over the warehouse (the feature store): ``playlog batch recs`` (batch/recs.py)."""
