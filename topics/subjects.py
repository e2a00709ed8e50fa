"""Schema Registry subjects of our event schemas: Confluent's ``TopicRecordNameStrategy``.

Several event types share a topic (``listening`` carries ``play.started``, ``play.progress``, ...), so
the subject of a value schema is ``<topic>-<record full name>``, e.g.
``playlog.listening-playlog.events.PlayStarted``: the strategy the Confluent serializers call
``TopicRecordNameStrategy`` (Java ``io.confluent.kafka.serializers.subject.TopicRecordNameStrategy``,
confluent-kafka-python ``topic_record_subject_name_strategy``). Each event type has exactly one topic
(the topic catalog), so each event type has exactly one subject per topic prefix.

Readers never need the subject: a record carries its schema id, and ``GET /schemas/ids/{id}`` answers
whatever subject a client names with ``?subject=`` (stock deserializers send ``<topic>-value``).
"""

from __future__ import annotations

from schemas.registry import Registry, SchemaVersion
from topics.topic_catalog import topic_of

STRATEGY = "TopicRecordNameStrategy"


def subject_name(topic: str, record_fullname: str) -> str:
    """The subject of a record schema written to ``topic`` (full topic name, prefix included)."""
    return f"{topic}-{record_fullname}"


def subject_of(event_type: str, fullname: str, prefix: str) -> str:
    """The subject of an event type's schema with the topic prefix ``prefix``."""
    return subject_name(prefix + topic_of(event_type), fullname)


def subjects(registry: Registry, prefix: str) -> dict[str, list[SchemaVersion]]:
    """subject -> its versions (oldest first) of every event type in ``registry`` whose topic the
    catalog knows, with the topic prefix ``prefix``."""
    out: dict[str, list[SchemaVersion]] = {}
    for v in registry.versions:
        try:
            subject = subject_of(v.event_type, v.fullname, prefix)
        except KeyError:  # a type on no topic of the catalog: never written, so no subject
            continue
        out.setdefault(subject, []).append(v)
    for versions in out.values():
        versions.sort(key=lambda v: v.version)
    return out
