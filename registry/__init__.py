"""``playlog registry``: the Confluent Schema Registry REST API over our event schemas.

- :mod:`registry.store`: subjects (TopicRecordNameStrategy), versions and ids: the schemas of
  ``schemas/registry.json`` under their stable ids, plus what an operator registered (kept under
  ``$PLAYLOG_DATA_DIR/registry``); compatibility by :func:`schemas.registry.check_type`.
- :mod:`registry.server`: the aiohttp app (the REST routes stock clients call, the Confluent error
  model, operator tokens for registration, ``/asyncapi.json``).
- :mod:`registry.cli`: ``playlog registry`` and ``playlog schemas ...`` (``register`` also pushes to
  the registry named by ``PLAYLOG_SCHEMA_REGISTRY_URL``).
"""
