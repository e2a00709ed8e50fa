"""The topic catalog, Kafka admin, producers and consumers of wire-format events."""
