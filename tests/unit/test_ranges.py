"""Values in range everywhere (the "Trust" issue, item 1).

- The codec checks every value against its Avro type on encode, on decode and in the JSON form:
  int32 for ``int``, int64 for ``long``, timestamps a calendar can show, finite doubles, bounded
  string sizes (ids <= 256 characters, other strings <= 1024) and array lengths (<= 10,000 items);
  a violation is an ``EventError`` naming the field.
- Every HTTP input of the player, playlist and catalog routes is checked to the same ranges: 400
  with the field named, nothing produced.
- A record a sink cannot write goes to the dead-letter topic with the reason and the sink goes on
  (here without a broker: ``sinks.runner.run_batches`` with the real Parquet and DuckDB sinks).
"""

from __future__ import annotations

import io
import struct
from typing import Any

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas.codec import (
    INT_MAX,
    MAX_ARRAY_ITEMS,
    MAX_ID_CHARS,
    MAX_TEXT_CHARS,
    Codec,
    EventError,
    default_codec,
)
from schemas.validate import decode_record
from sinks.duckdb_sink import DuckDBWarehouse
from sinks.parquet import ParquetArchive
from sinks.runner import run_batches
from tests.unit.test_api_routes import World, call, catalog_events, run
from topics.topic_catalog import key_of

codec = default_codec()
T = 1_778_000_000_000  # 2026-05-05

PLAY = {"type": "player.play_requested", "event_id": "pr-1", "occurred_at": T, "user_id": "u1", "device_id": "d1",
        "track_ids": ["t1"], "context_uri": None, "offset": 0, "position_ms": 0}
# as decoded: with every field of the latest schema (optional ones as their default)
PROGRESS = codec.from_json(codec.to_json({
    "type": "play.progress", "event_id": "pp-1", "occurred_at": T, "play_id": "p1", "user_id": "u1",
    "track_id": "t1", "ms_played": 40_000, "country": "SE", "product": "free", "context_uri": None}))
POOL = {"type": "royalty.pool_declared", "event_id": "pool-1", "occurred_at": T, "period": "2026-05",
        "country": "SE", "product": "free", "amount_micros": 5_000_000, "currency": "EUR"}
USER = {"type": "user.registered", "event_id": "ur-1", "occurred_at": T, "user_id": "u1", "country": "SE",
        "product": "free", "display_name": "Ann"}
ENCODED = {"type": "audio.encoded", "event_id": "ae-1", "occurred_at": T, "track_id": "t1", "file_id": "f1",
           "codec": "aac", "container": "adts", "bitrate_kbps": 160, "sample_rate_hz": 44100, "segment_ms": 10_000,
           "segment_count": 3, "byte_size": 1000, "storage_key": "audio/f1", "loudness_lufs": -14.0,
           "true_peak_dbtp": -1.0}


def raw_wire(event: dict) -> bytes:
    """Wire-format bytes written by a bare fastavro writer (an old producer, a foreign client): no
    check of ours on the way."""
    version = codec.registry.latest(event["type"])
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, version.id))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(version.schema), {k: v for k, v in event.items()
                                                                           if k != "type"})
    return buf.getvalue()


# (event, field named in the reason) that fastavro writes but that are out of range for our codec
OUT_OF_RANGE = {
    "int_high": ({**PLAY, "position_ms": 2**40}, "position_ms"),
    "int_low": ({**PLAY, "offset": -(2**31) - 1}, "offset"),
    "int_in_array_record": (None, "rightsholders[0].share_ppm"),  # filled below
    "long_ts_far_future": ({**PROGRESS, "occurred_at": 2**62}, "occurred_at"),
    "id_too_long": ({**PROGRESS, "play_id": "p" * (MAX_ID_CHARS + 1)}, "play_id"),
    "id_in_array_too_long": ({**PLAY, "track_ids": ["t1", "t" * (MAX_ID_CHARS + 1)]}, "track_ids[1]"),
    "text_too_long": ({**USER, "display_name": "x" * (MAX_TEXT_CHARS + 1)}, "display_name"),
    "array_too_long": ({**PLAY, "track_ids": ["t1"] * (MAX_ARRAY_ITEMS + 1)}, "track_ids"),
    "nan": ({**ENCODED, "loudness_lufs": float("nan")}, "loudness_lufs"),
    "inf": ({**ENCODED, "true_peak_dbtp": float("-inf")}, "true_peak_dbtp"),
}
OUT_OF_RANGE["int_in_array_record"] = ({
    "type": "track.ingested", "event_id": "ti-1", "occurred_at": T, "track_id": "t1", "isrc": "I", "title": "T",
    "album_id": "al", "artist_ids": ["ar"], "duration_ms": 1000, "genres": [], "explicit": False, "distributor": "d",
    "rightsholders": [{"rightsholder_id": "rh", "share_ppm": 2**33}],
}, "rightsholders[0].share_ppm")


@pytest.mark.parametrize("name", sorted(OUT_OF_RANGE))
def test_encode_refuses_out_of_range_values_naming_the_field(name: str) -> None:
    event, field = OUT_OF_RANGE[name]
    with pytest.raises(EventError) as info:
        codec.encode(event)
    assert f"field '{field}'" in info.value.reason and info.value.reason.startswith(event["type"] + ": ")


@pytest.mark.parametrize("name", sorted(OUT_OF_RANGE))
def test_decode_refuses_out_of_range_values_written_by_a_raw_writer(name: str) -> None:
    event, field = OUT_OF_RANGE[name]
    data = raw_wire(event)
    for call_ in (lambda: codec.decode(data), lambda: decode_record(codec, data)):
        with pytest.raises(EventError) as info:
            call_()
        assert f"field '{field}'" in info.value.reason and info.value.reason.startswith(event["type"] + ": ")


@pytest.mark.parametrize("name", sorted(set(OUT_OF_RANGE) - {"nan", "inf"}))
def test_the_json_form_is_checked_to_the_same_bounds(name: str) -> None:
    event, field = OUT_OF_RANGE[name]
    obj: dict[str, Any] = {**event, "occurred_at": "2026-05-05T00:00:00Z"}
    if name == "long_ts_far_future":
        obj["occurred_at"] = "9999-12-31T23:59:59.999Z"
        assert codec.from_json(obj)["occurred_at"] > 0  # the last instant RFC 3339 can show is fine
        return
    with pytest.raises(EventError) as info:
        codec.from_json(obj)
    assert f"field '{field}'" in info.value.reason


def test_values_at_the_bounds_round_trip() -> None:
    at_bounds = [
        {**PLAY, "position_ms": INT_MAX, "offset": 0, "track_ids": ["t" * MAX_ID_CHARS] * 3},
        {**POOL, "amount_micros": 2**63 - 1},
        {**USER, "display_name": "x" * MAX_TEXT_CHARS, "user_id": "u" * MAX_ID_CHARS},
        {**PLAY, "track_ids": ["t1"] * MAX_ARRAY_ITEMS},
    ]
    for ev in at_bounds:
        assert codec.decode(codec.encode(ev)) == ev
        assert codec.from_json(codec.to_json(ev)) == ev


def test_long_out_of_range_is_refused_on_encode() -> None:
    with pytest.raises(EventError, match="field 'amount_micros' is out of range for long"):
        codec.encode({**POOL, "amount_micros": 2**63})


def test_trailing_bytes_after_the_avro_body_do_not_decode() -> None:
    data = codec.encode(PROGRESS)
    assert codec.decode(data) == PROGRESS
    with pytest.raises(EventError) as info:
        codec.decode(data + b"\x00\x02\x04")
    assert info.value.reason == "play.progress: 3 trailing bytes after the Avro body"


# -- HTTP inputs ---------------------------------------------------------------------------------------
@pytest.fixture
def world() -> World:
    w = World()
    w.feed(catalog_events())
    return w


def _assert_400(status: int, body: Any, field: str) -> None:
    assert status == 400, (status, body)
    assert set(body) == {"error"} and body["error"]["status"] == 400, body
    assert field in body["error"]["message"], body


def test_play_position_ms_out_of_int32_is_400_and_nothing_is_produced(world: World) -> None:
    async def scenario(c) -> None:  # noqa: ANN001
        tok = world.token("u1")
        for bad in (2**40, INT_MAX + 1, -1, 1.5, "5", True):
            status, body = await call(c, "PUT", "/v1/me/player/play", tok,
                                      json={"uris": ["spotify:track:t1"], "position_ms": bad})
            _assert_400(status, body, "position_ms")
        for bad in (2**40, -1, True, "0"):
            status, body = await call(c, "PUT", "/v1/me/player/play", tok,
                                      json={"uris": ["spotify:track:t1"], "offset": {"position": bad}})
            _assert_400(status, body, "offset")
        assert world.publisher.events == []
        status, _ = await call(c, "PUT", "/v1/me/player/play", tok,
                               json={"uris": ["spotify:track:t1"], "position_ms": INT_MAX})
        assert status == 204

    run(world, scenario)


def test_a_context_too_long_for_the_queue_is_400(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from playback.routes import player

    monkeypatch.setattr(player, "_context_tracks", lambda api, uid, kind, ctx: ["t1"] * (MAX_ARRAY_ITEMS + 1))

    async def scenario(c) -> None:  # noqa: ANN001
        status, body = await call(c, "PUT", "/v1/me/player/play", world.token("u1"),
                                  json={"context_uri": "spotify:album:al1"})
        _assert_400(status, body, "context_uri")
        assert world.publisher.events == []

    run(world, scenario)


def test_player_query_parameters_are_checked_to_the_int_range(world: World) -> None:
    async def scenario(c) -> None:  # noqa: ANN001
        tok = world.token("u1")
        assert (await call(c, "PUT", "/v1/me/player/play", tok, json={"uris": ["spotify:track:t1"]}))[0] == 204
        for path, field in (
            (f"/v1/me/player/seek?position_ms={2**40}", "position_ms"),
            (f"/v1/me/player/seek?position_ms={INT_MAX + 1}", "position_ms"),
            ("/v1/me/player/seek?position_ms=-1", "position_ms"),
            ("/v1/me/player/seek?position_ms=1e3", "position_ms"),
            ("/v1/me/player/seek?position_ms=" + "9" * 5000, "position_ms"),
            ("/v1/me/player/volume?volume_percent=101", "volume_percent"),
            (f"/v1/me/player/volume?volume_percent={2**40}", "volume_percent"),
            ("/v1/me/player/volume?volume_percent=-1", "volume_percent"),
        ):
            status, body = await call(c, "PUT", path, tok)
            _assert_400(status, body, field)
        assert (await call(c, "PUT", f"/v1/me/player/seek?position_ms={INT_MAX}", tok))[0] == 204

    run(world, scenario)


def test_playlist_inputs_are_checked_to_the_int_range(world: World) -> None:
    async def scenario(c) -> None:  # noqa: ANN001
        tok = world.token("u1")
        status, body = await call(c, "POST", "/v1/users/u1/playlists", tok, json={"name": "Mix"})
        assert status == 201
        pid = body["id"]
        tracks = {"uris": ["spotify:track:t1", "spotify:track:t2"]}
        assert (await call(c, "POST", f"/v1/playlists/{pid}/tracks", tok, json=tracks))[0] == 201
        produced = len(world.publisher.events)
        for bad in (2**40, INT_MAX + 1, -1, True, 1.0):
            status, body = await call(c, "POST", f"/v1/playlists/{pid}/tracks", tok, json={**tracks, "position": bad})
            _assert_400(status, body, "position")
        status, body = await call(c, "POST", f"/v1/playlists/{pid}/tracks?uris=spotify:track:t1&position={2**40}",
                                  tok)
        _assert_400(status, body, "position")
        for field in ("range_start", "range_length", "insert_before"):
            for bad in (2**40, INT_MAX + 1, -1, False):
                reorder = {"range_start": 0, "insert_before": 2, "range_length": 1, field: bad}
                status, body = await call(c, "PUT", f"/v1/playlists/{pid}/tracks", tok, json=reorder)
                _assert_400(status, body, field)
        status, body = await call(c, "POST", "/v1/users/u1/playlists", tok, json={"name": "x" * 5000})
        _assert_400(status, body, "name")
        assert len(world.publisher.events) == produced  # nothing out of range was produced

    run(world, scenario)


def test_search_inputs_are_checked(world: World) -> None:
    async def scenario(c) -> None:  # noqa: ANN001
        tok = world.token("u1")
        for path, field in (
            (f"/v1/search?q=river&limit={2**40}", "limit"),
            ("/v1/search?q=river&limit=-1", "limit"),
            (f"/v1/search?q=river&offset={2**40}", "offset"),
            ("/v1/search?q=river&offset=1001", "offset"),
            ("/v1/search?q=" + "a" * (MAX_TEXT_CHARS + 1), "q"),
        ):
            status, body = await call(c, "GET", path, tok)
            _assert_400(status, body, field)
        status, body = await call(c, "GET", "/v1/tracks/" + "t" * (MAX_ID_CHARS + 1), tok)
        _assert_400(status, body, "id")

    run(world, scenario)


def test_client_event_ms_played_out_of_range_is_400_naming_the_field(world: World) -> None:
    async def scenario(c) -> None:  # noqa: ANN001
        tok = world.token("u1")
        obj = {**PROGRESS, "occurred_at": "2026-05-27T00:00:00Z", "ms_played": 2**40}
        status, body = await call(c, "POST", "/v1/events", tok, json={"events": [obj]})
        assert status == 400 and "ms_played" in body["rejected"][0]["reason"], body
        assert world.publisher.events == []

    run(world, scenario)


def test_every_event_the_routes_produce_encodes(world: World) -> None:
    async def scenario(c) -> None:  # noqa: ANN001
        tok = world.token("u1")
        assert (await call(c, "PUT", "/v1/me/player/play", tok,
                           json={"uris": ["spotify:track:t1", "spotify:track:t2"], "position_ms": INT_MAX,
                                 "offset": {"position": 1}}))[0] == 204
        assert (await call(c, "PUT", f"/v1/me/player/seek?position_ms={INT_MAX}", tok))[0] == 204
        assert (await call(c, "PUT", "/v1/me/player/volume?volume_percent=100", tok))[0] == 204
        status, body = await call(c, "POST", "/v1/users/u1/playlists", tok, json={"name": "n" * 300})
        assert status == 201
        assert (await call(c, "POST", f"/v1/playlists/{body['id']}/tracks", tok,
                           json={"uris": ["spotify:track:t1"], "position": 0}))[0] == 201
        assert world.publisher.events
        for e in world.publisher.events:
            assert codec.decode(codec.encode(e)) == e

    run(world, scenario)


# -- sinks: the second line of defence ----------------------------------------------------------------
class LaxCodec(Codec):
    """The codec as it was: fastavro's decode without any range check (what an old reader did)."""

    def decode(self, data: bytes) -> dict:
        version = self.registry.by_id(struct.unpack_from(">bI", data)[1])
        event = fastavro.schemaless_reader(io.BytesIO(data[5:]), self._writers[version.id], None)
        event["type"] = version.event_type
        return event


class FakeRaw:
    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None):
        self.topic, self.partition, self.offset, self.key, self.value = topic, partition, offset, key, value


def _plays(n: int, start: int = 0) -> list[dict]:
    return [{**PROGRESS, "event_id": f"pp-{i}", "play_id": f"p{i}", "ms_played": 31_000 + i} for i in range(start,
                                                                                                           start + n)]


def _run_sink(sink, codec_: Codec) -> tuple[list, list, Any]:  # noqa: ANN001
    good = _plays(5)
    poison = {**PROGRESS, "event_id": "pp-poison", "play_id": "p-poison", "ms_played": 2**40}
    more = _plays(5, start=5)
    events = [*good, poison, *more]
    raws = [FakeRaw("pfx.listening", 0, i, key_of(e).encode(), raw_wire(e)) for i, e in enumerate(events)]
    dead: list = []
    commits: list = []
    stats = run_batches(sink, iter([raws[:4], raws[4:]]), commit=lambda b: commits.append(max(r.offset for r in b)),
                        dead_letter=lambda raw, reason: dead.append((raw.topic, raw.offset, raw.value, reason)),
                        flush_dead_letters=lambda: None, prefix="pfx.", codec=codec_)
    assert stats.written == 10 and stats.dead_lettered == 1
    assert commits == [3, 10]  # committed past the poison
    assert [(t, o, v) for t, o, v, _ in dead] == [("pfx.listening", 5, raws[5].value)]
    return [e for e in events if e is not poison], dead, stats


@pytest.mark.parametrize("lax", [False, True], ids=["codec", "lax-codec"])
def test_parquet_sink_survives_a_poison_pill(tmp_path, lax: bool) -> None:  # noqa: ANN001
    sink = ParquetArchive(tmp_path / "archive")
    good, dead, _ = _run_sink(sink, LaxCodec() if lax else codec)
    reason = dead[0][3]
    assert "ms_played" in reason and (("parquet" in reason) if lax else reason.startswith("play.progress: field"))
    table = pa.concat_tables([pq.read_table(p) for p in sorted((tmp_path / "archive").rglob("*.parquet"))])
    assert sorted(table.column("event_id").to_pylist()) == sorted(e["event_id"] for e in good)


@pytest.mark.parametrize("lax", [False, True], ids=["codec", "lax-codec"])
def test_duckdb_sink_survives_a_poison_pill(tmp_path, lax: bool) -> None:  # noqa: ANN001
    sink = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        good, dead, _ = _run_sink(sink, LaxCodec() if lax else codec)
        reason = dead[0][3]
        assert "ms_played" in reason and (("duckdb" in reason) if lax else reason.startswith("play.progress: field"))
        ids = sorted(r[0] for r in sink.con.execute("SELECT event_id FROM events").fetchall())
        assert ids == sorted(e["event_id"] for e in good)
    finally:
        sink.close()


class FlakySink:
    """A sink whose store refuses one record at flush (a data error only the store sees)."""

    name = "flaky"
    data_errors = (ValueError,)

    def __init__(self) -> None:
        self.pending: list = []
        self.durable: list = []

    def write(self, batch: list) -> None:
        self.pending += batch

    def flush(self) -> None:
        if any(r[4]["event_id"] == "pp-3" for r in self.pending):
            raise ValueError("value rejected by the store")
        self.durable += self.pending
        self.pending = []

    def discard(self) -> None:
        self.pending = []

    def close(self) -> None:
        pass


def test_a_record_the_store_refuses_at_flush_is_isolated_and_dead_lettered() -> None:
    events = _plays(8)
    raws = [FakeRaw("listening", 0, i, None, codec.encode(e)) for i, e in enumerate(events)]
    dead: list = []
    sink = FlakySink()
    stats = run_batches(sink, iter([raws]), commit=lambda b: None,
                        dead_letter=lambda raw, reason: dead.append((raw.offset, reason)),
                        flush_dead_letters=lambda: None)
    assert dead == [(3, "flaky sink cannot write play.progress: value rejected by the store")]
    assert sorted(r[2] for r in sink.durable) == [0, 1, 2, 4, 5, 6, 7]
    assert stats.dead_lettered == 1 and stats.written == 7


def test_infrastructure_errors_still_stop_the_sink() -> None:
    class Down(FlakySink):
        def flush(self) -> None:
            raise OSError("disk full")

    raws = [FakeRaw("listening", 0, i, None, codec.encode(e)) for i, e in enumerate(_plays(3))]
    with pytest.raises(OSError, match="disk full"):
        run_batches(Down(), iter([raws]), commit=lambda b: None, dead_letter=lambda raw, reason: None,
                    flush_dead_letters=lambda: None)

