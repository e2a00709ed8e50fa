"""Avro schemas of every playlog event, the local schema registry and the codec.

`schemas/avro/*.avsc` is the contract of spec/events.md in Avro form; `registry.json` gives each
schema version a stable id used in the Confluent wire format (magic byte 0, 4-byte id, body).
"""
