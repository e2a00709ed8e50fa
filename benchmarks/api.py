"""Benchmarks of the playback API (``playlog bench api``) and of search over a synthetic catalog.

:func:`run_api_bench` -- play + manifest over loopback HTTP:

* a broker: ``bootstrap`` if given, else a :class:`devstack.kafka.LocalKafka` in a temporary
  directory (topics created under a fresh prefix);
* the API server in a subprocess (``python -m benchmarks.api serve``): its replica is filled by
  running the processors' view folds over a synthetic world (``tracks`` tracks, each with a 4-rung
  ladder of ``segments`` segments and rights everywhere; ``users`` users, half free, half premium)
  -- the same documents the worker would publish, applied without the view-topic transport -- and it
  follows the player topic as ``playlog api`` does, so its pending overlays drain; every play is
  produced to Kafka and the broker's acknowledgement is awaited before the 204;
* ``kafka=False`` isolates the API itself: no broker, produced player events are folded into the
  replica in process (what the player topic would deliver);
* an open-loop client in this process: ``connections`` keep-alive connections; operations (a
  ``PUT /v1/me/player/play`` then a ``GET /v1/playback/{id}/manifest`` for a random user and track)
  are *scheduled* at a fixed rate and each request's latency is measured from its scheduled start,
  so queueing is counted (no coordinated omission). ``rate`` counts HTTP requests (two per operation).

Reported: per-route and per-operation p50/p99 at ``rate``, then a ladder of higher rates; the highest
sustained rate is the highest where the achieved rate is >= 97 % of the offered one without errors.
Then the recommender: ``GET /v1/views/home`` and ``GET /v1/recommendations`` p50/p95/p99 at
``recs_rate`` (1,000/s) over ``recs_users`` (100,000) users, ``history_users`` of them with histories.

:func:`run_search_bench` -- search latency over a ``tracks``-track synthetic catalog
(``ingest.synthetic``): catalog events -> search documents (aliases resolved by ``CatalogIndex``) ->
tantivy index (build time reported), then ``queries`` queries sampled from real titles / artist names,
half with an injected typo; p50/p95/p99 of :meth:`SearchIndex.search` (limit 20, with the total count).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TOKEN_SECRET = "playlog-bench-token-secret"
T0 = 1_767_225_600_000  # 2026-01-01


# ==================================================================================================
# search


@dataclass
class SearchBenchResult:
    tracks: int
    documents: int
    build_seconds: float
    queries: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_hits: float
    typo_hit_rate: float  # share of typo queries whose source track is in the top 20


def _typo(rng: random.Random, word: str) -> str:
    i = rng.randrange(len(word))
    op = rng.randrange(3)
    if op == 0:
        return word[:i] + word[i + 1:]
    if op == 1:
        return word[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz") + word[i + 1:]
    j = min(i + 1, len(word) - 1)
    chars = list(word)
    chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


def run_search_bench(tracks: int = 1_000_000, queries: int = 2000, seed: int = 0) -> SearchBenchResult:
    from ingest.synthetic import SyntheticCatalog
    from playback.search import SearchIndex, max_edits, popularity_of
    from processors.catalog import CatalogIndex

    rng = random.Random(seed)
    index = SearchIndex(heap_size=256_000_000, threads=2)
    canon = CatalogIndex()
    artists: dict[str, str] = {}
    albums: dict[str, str] = {}
    samples: list[tuple[str, str, str]] = []  # (track id, title, artist name)
    began = time.perf_counter()
    n_docs = 0
    for e in SyntheticCatalog(tracks, seed).events():
        t = e["type"]
        if t == "artist.ingested":
            artists[e["artist_id"]] = e["name"]
            index.upsert_artist({"id": e["artist_id"], "name": e["name"]})
            n_docs += 1
        elif t == "album.ingested":
            albums[e["album_id"]] = e["title"]
            index.upsert_album({"id": e["album_id"], "title": e["title"],
                                "artist_names": [artists.get(a, "") for a in e["artist_ids"]]})
            n_docs += 1
        elif t == "track.ingested":
            canon.evolve(e)
            if canon.canonical_id(e["track_id"]) != e["track_id"]:
                continue  # an alias upload: the canonical document carries it (ids field)
            names = [artists.get(a, "") for a in e["artist_ids"]]
            doc = {"id": e["track_id"], "title": e["title"], "artist_names": names,
                   "album_title": albums.get(e["album_id"]), "aliases": [], "isrc": e["isrc"]}
            streams = int(rng.paretovariate(1.2)) - 1
            index.upsert_track(doc, popularity_of(streams))
            n_docs += 1
            if len(samples) < 20_000:
                samples.append((e["track_id"], e["title"], names[0] if names else ""))
            elif rng.random() < 20_000 / max(1, n_docs):
                samples[rng.randrange(len(samples))] = (e["track_id"], e["title"], names[0] if names else "")
    index.commit()
    build = time.perf_counter() - began
    log.info("search index: %d documents in %.1fs", n_docs, build)

    timings: list[float] = []
    hits_total = 0
    typo_queries = typo_found = 0
    for i in range(queries):
        track_id, title, artist = rng.choice(samples)
        text = f"{title} {artist.split()[0]}" if artist and rng.random() < 0.5 else title
        typo = i % 2 == 1
        if typo:
            words = text.split()
            long = [k for k, w in enumerate(words) if max_edits(w) > 0]
            if long:
                k = rng.choice(long)
                words[k] = _typo(rng, words[k])
                text = " ".join(words)
            else:
                typo = False
        t = time.perf_counter()
        hits = index.search(text, "track", limit=20)
        timings.append(time.perf_counter() - t)
        hits_total += len(hits.ids)
        if typo:
            typo_queries += 1
            typo_found += track_id in hits.ids
    timings.sort()

    def pct(p: float) -> float:
        return round(timings[min(len(timings) - 1, int(p * len(timings)))] * 1000, 3)

    return SearchBenchResult(tracks, n_docs, round(build, 1), queries, pct(0.50), pct(0.95), pct(0.99),
                             round(hits_total / max(1, queries), 1), round(typo_found / max(1, typo_queries), 3))


# ==================================================================================================
# the bench server (a subprocess)


GENRES = 8


def bench_genre(artist: int) -> str:
    return f"g{artist % GENRES}"


def listening_world(users: int, tracks: int, plays: int, seed: int = 0) -> list[dict]:
    """``play.completed`` events of the first ``users`` bench users with planted tastes: each user likes
    2 genres and 3 artists of them; a play is a favourite artist (half the time) or an artist of a liked
    genre, then one of the artist's tracks. Spread over the 4 weeks after :data:`T0`."""
    rng = random.Random(seed)
    n_artists = max(1, tracks // 10)
    by_genre: dict[str, list[int]] = {}
    for a in range(n_artists):
        by_genre.setdefault(bench_genre(a), []).append(a)
    genres = sorted(by_genre)
    out: list[dict] = []
    n = 0
    for u in range(users):
        liked = rng.sample(genres, min(2, len(genres)))
        pool = [a for g in liked for a in by_genre[g]]
        favourites = rng.sample(pool, min(3, len(pool)))
        for _ in range(plays):
            n += 1
            a = rng.choice(favourites) if rng.random() < 0.5 else rng.choice(pool)
            t = a + n_artists * rng.randrange(max(1, tracks // n_artists))  # a track of artist a (t % n == a)
            out.append({"type": "play.completed", "event_id": f"bench-l{n}", "play_id": f"bench-p{n}",
                        "user_id": f"bu{u}", "track_id": f"bt{min(t, tracks - 1)}", "ms_played": 100_000,
                        "country": ("DE", "US", "SE")[u % 3], "product": "premium" if u % 2 else "free",
                        "occurred_at": T0 + rng.randrange(28 * 86_400_000)})
    out.sort(key=lambda e: e["occurred_at"])
    return out


def bench_world(tracks: int, users: int, segments: int) -> list[dict]:
    """Events of the bench world: artists, albums, tracks with a 4-rung ladder (artist ``a`` plays genre
    ``g{a % 8}``), rights in 3 territories, users with one device each."""
    out: list[dict] = []
    n = 0

    def ev(etype: str, **fields: Any) -> dict:
        nonlocal n
        n += 1
        return {"type": etype, "event_id": f"bench-{n}", "occurred_at": T0, **fields}

    for a in range(max(1, tracks // 10)):
        out.append(ev("artist.ingested", artist_id=f"ba{a}", name=f"Bench Artist {a}",
                      genres=[bench_genre(a)]))
        out.append(ev("album.ingested", album_id=f"bb{a}", title=f"Bench Album {a}", artist_ids=[f"ba{a}"],
                      release_date="2025-01-01", label="Bench", artwork_uri=None))
    for t in range(tracks):
        a = t % max(1, tracks // 10)
        tid = f"bt{t}"
        out.append(ev("track.ingested", track_id=tid, isrc=f"BENCH{t:07d}", title=f"Bench Track {t}",
                      album_id=f"bb{a}", artist_ids=[f"ba{a}"], duration_ms=segments * 10_000,
                      genres=[bench_genre(a)],
                      explicit=False, distributor="bench",
                      rightsholders=[{"rightsholder_id": "rh", "share_ppm": 1_000_000}]))
        for r, (codec, kbps) in enumerate((("aac", 96), ("aac", 160), ("opus", 160), ("aac", 320))):
            fid = f"{t:024x}{r:08x}"
            out.append(ev("audio.encoded", track_id=tid, file_id=fid, codec=codec, container="adts",
                          bitrate_kbps=kbps, sample_rate_hz=44_100, segment_ms=10_000, segment_count=segments,
                          byte_size=segments * kbps * 1250, storage_key=f"audio/{fid}",
                          loudness_lufs=-9.0 - (t % 12), true_peak_dbtp=-1.0 - (t % 3)))
        for c in ("DE", "US", "SE"):
            out.append(ev("rights.changed", track_id=tid, territory=c, allowed=True, valid_from=None, valid_to=None))
    for u in range(users):
        uid = f"bu{u}"
        out.append(ev("user.registered", user_id=uid, country=("DE", "US", "SE")[u % 3],
                      product="premium" if u % 2 else "free", display_name=uid))
        out.append(ev("device.registered", user_id=uid, device_id="d", device_type="phone", name="phone"))
    return out


def fold_listening(replica: Any, events: Iterable[dict]) -> None:
    """Fill ``replica`` as the workers would from these listening events: the taste stage's
    ``view.taste`` documents (processors/taste_view.py) and the batch job's ``view.popularity`` and
    ``view.similar`` (streams of 30 s or more; item-item cosine, processors/recs/similarity.py)."""
    from processors import taste_view
    from processors.recs.similarity import item_item
    from processors.rules import MIN_STREAM_MS

    def info(track_id: str) -> tuple[str, list[str], list[str]] | None:
        canon = replica.canonical_id(track_id) or track_id
        doc = replica.track_doc(canon)
        return None if doc is None else (canon, list(doc.get("artist_ids") or []), list(doc.get("genres") or []))

    states: dict[str, dict] = {}
    counted: set[str] = set()
    by_country: dict[str, dict[str, int]] = {}
    listened: dict[str, set[str]] = {}
    for e in events:
        uid = e["user_id"]
        after, _ = taste_view.evolve(states.get(uid), e, info)
        if after is not None:
            states[uid] = after
        if (e.get("ms_played") or 0) >= MIN_STREAM_MS and e["play_id"] not in counted:
            counted.add(e["play_id"])
            canon = replica.canonical_id(e["track_id"]) or e["track_id"]
            per = by_country.setdefault(canon, {})
            per[e["country"]] = per.get(e["country"], 0) + 1
            listened.setdefault(uid, set()).add(canon)
    for uid, state in states.items():
        replica.apply("taste", uid, taste_view.to_view(state))
    for track, per in by_country.items():
        replica.apply("popularity", track, {"track_id": track, "streams": sum(per.values()), "by_country": per})
    for track, neighbours in item_item(listened).items():
        replica.apply("similar", track, {"track_id": track, "neighbours": [list(n) for n in neighbours]})


def serve(port: int, tracks: int, users: int, segments: int, kafka: bool = True, history_users: int = 0,
          plays: int = 0) -> None:
    """The bench API server: replica filled from the folded bench world (and the listening of the first
    ``history_users`` users, ``plays`` each, loaded as the taste stage and the batch job publish them), real Kafka
    publisher (or, with ``kafka=False``, no broker at all: produced player events are folded into the
    replica at once)."""
    from aiohttp import web

    from core.settings import load
    from playback.api import KafkaPublisher, MemoryPublisher, PlaybackApi, build_app
    from playback.replica import Replica
    from processors import views

    settings = load()
    replica = Replica()
    events = bench_world(tracks, users, segments)
    for spec in views.VIEWS:
        if spec.name == "player":
            continue
        published, _ = views.apply_batch(spec, {}, [(None, e) for e in events])
        for key, (_, doc) in published.items():
            replica.apply(spec.name, key, doc)
    began = time.perf_counter()
    fold_listening(replica, listening_world(history_users, tracks, plays))
    if history_users:
        log.warning("bench server: %d users x %d plays folded in %.1fs", history_users, plays,
                    time.perf_counter() - began)
    replica.search.commit()
    replica.ready = True
    if kafka:
        replica.start(settings)  # follows the (initially empty) view topics and the player topic
        publisher: Any = KafkaPublisher(settings)
    else:
        def fold(events: list[dict]) -> None:
            for e in events:
                replica.apply("player", e["user_id"], e)
            publisher.events.clear()

        publisher = MemoryPublisher(on_publish=fold)
    api = PlaybackApi(settings, replica, publisher)
    web.run_app(build_app(api), host="127.0.0.1", port=port, print=None, access_log=None, handle_signals=True)


# ==================================================================================================
# the open-loop client


@dataclass
class RateResult:
    offered_rps: float
    achieved_rps: float
    requests: int
    errors: int
    play_p50_ms: float
    play_p99_ms: float
    manifest_p50_ms: float
    manifest_p99_ms: float
    pair_p50_ms: float
    pair_p99_ms: float
    all_p99_ms: float


@dataclass
class RecsRateResult:
    """One recommender route at a fixed offered rate (open loop; a request still waiting for a connection
    ``give_up_s`` after its scheduled start is dropped and counted at ``give_up_s``)."""

    route: str
    offered_rps: float
    achieved_rps: float
    requests: int
    errors: int
    dropped: int
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass
class ApiBenchResult:
    at_rate: RateResult
    ladder: list[RateResult] = field(default_factory=list)
    recs: list[RecsRateResult] = field(default_factory=list)
    home_p95_ms: float = 0.0  # flat copies of ``recs`` (the bench record keeps scalars only)
    home_achieved_rps: float = 0.0
    recommendations_p95_ms: float = 0.0
    recommendations_achieved_rps: float = 0.0
    recs_rate: float = 0.0
    recs_users: int = 0
    history_users: int = 0
    history_plays: int = 0
    highest_sustained_rps: float = 0.0
    tracks: int = 0
    users: int = 0
    segments_per_rung: int = 0
    broker: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status


async def _open_loop(n: int, interval: float, start: Any, rng: random.Random, n_tokens: int, tracks: int,
                     conns: list) -> float:
    """Start ``start(scheduled, token index, track index)`` every ``interval`` seconds, ``n`` times (open
    loop: a late response never delays the next start); wait for all, close ``conns``; the elapsed seconds."""
    began = time.perf_counter()
    tasks = []
    for i in range(n):
        scheduled = began + i * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(start(scheduled, rng.randrange(n_tokens), rng.randrange(tracks))))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    for c in conns:
        c.writer.close()
    return elapsed


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 3)


async def _run_rate(port: int, rps: float, seconds: float, tokens: list[str], tracks: int, connections: int,
                    rng: random.Random) -> RateResult:
    conns = [_Conn(*await asyncio.open_connection("127.0.0.1", port)) for _ in range(connections)]
    free: asyncio.Queue[_Conn] = asyncio.Queue()
    for c in conns:
        free.put_nowait(c)
    ops = int(rps / 2 * seconds)
    interval = 2.0 / rps
    play_l: list[float] = []
    man_l: list[float] = []
    pair_l: list[float] = []
    errors = 0
    done = 0

    async def operation(scheduled: float, user: int, track: int) -> None:
        nonlocal errors, done
        conn = await free.get()
        try:
            auth = tokens[user].encode()
            body = b'{"uris":["spotify:track:bt%d"]}' % track
            play = (b"PUT /v1/me/player/play HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer " + auth +
                    b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            status = await conn.request(play)
            t1 = time.perf_counter()
            play_l.append(t1 - scheduled)
            errors += status != 204
            man = (b"GET /v1/playback/bt%d/manifest HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer " % track +
                   auth + b"\r\n\r\n")
            status = await conn.request(man)
            t2 = time.perf_counter()
            man_l.append(t2 - t1)
            pair_l.append(t2 - scheduled)
            errors += status != 200
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 2
        finally:
            free.put_nowait(conn)
            done += 1

    elapsed = await _open_loop(ops, interval, operation, rng, len(tokens), tracks, conns)
    return RateResult(
        offered_rps=rps, achieved_rps=round(2 * ops / elapsed, 1), requests=2 * ops, errors=errors,
        play_p50_ms=_pct(play_l, 0.5), play_p99_ms=_pct(play_l, 0.99),
        manifest_p50_ms=_pct(man_l, 0.5), manifest_p99_ms=_pct(man_l, 0.99),
        pair_p50_ms=_pct(pair_l, 0.5), pair_p99_ms=_pct(pair_l, 0.99),
        all_p99_ms=_pct(play_l + man_l, 0.99),
    )


async def _run_recs_rate(port: int, route: str, rps: float, seconds: float, tokens: list[str], tracks: int,
                         connections: int, rng: random.Random, give_up_s: float = 5.0) -> RecsRateResult:
    """``GET`` requests of ``route`` ("home": ``/v1/views/home?limit=10``; "recommendations":
    ``/v1/recommendations?seed_tracks=<random>&limit=20``) for random users, scheduled at ``rps``."""
    conns = [_Conn(*await asyncio.open_connection("127.0.0.1", port)) for _ in range(connections)]
    free: asyncio.Queue[_Conn] = asyncio.Queue()
    for c in conns:
        free.put_nowait(c)
    n = int(rps * seconds)
    interval = 1.0 / rps
    lat: list[float] = []
    errors = dropped = 0

    async def request(scheduled: float, user: int, track: int) -> None:
        nonlocal errors, dropped
        conn = await free.get()
        try:
            if time.perf_counter() - scheduled > give_up_s:
                dropped += 1
                lat.append(give_up_s)
                return
            path = (b"/v1/views/home?limit=10" if route == "home"
                    else b"/v1/recommendations?seed_tracks=bt%d&limit=20" % track)
            raw = (b"GET " + path + b" HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer " + tokens[user].encode() +
                   b"\r\n\r\n")
            status = await conn.request(raw)
            lat.append(time.perf_counter() - scheduled)
            errors += status != 200
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
        finally:
            free.put_nowait(conn)

    elapsed = await _open_loop(n, interval, request, rng, len(tokens), tracks, conns)
    return RecsRateResult(route, rps, round((n - dropped) / elapsed, 1), n, errors, dropped,
                          _pct(lat, 0.5), _pct(lat, 0.95), _pct(lat, 0.99))


def run_api_bench(
    rate: float = 2000.0,
    seconds: float = 10.0,
    *,
    ladder: tuple[float, ...] = (3000.0, 4000.0, 6000.0, 8000.0),
    ladder_seconds: float = 5.0,
    tracks: int = 1000,
    users: int = 1000,
    segments: int = 21,
    connections: int = 64,
    bootstrap: str | None = None,
    kafka: bool = True,
    seed: int = 0,
    recs_rate: float = 1000.0,
    recs_seconds: float = 2.0,
    recs_users: int = 100_000,
    history_users: int = 100_000,
    history_plays: int = 20,
) -> ApiBenchResult:
    """Play+manifest latency at ``rate`` requests/s for ``seconds``, then the ``ladder`` of higher rates
    (stopping at the first one not sustained); then ``GET /v1/views/home`` and ``GET /v1/recommendations``
    at ``recs_rate`` for ``recs_seconds`` each over ``recs_users`` registered users (random ones), the
    first ``history_users`` of them (all by default) with ``history_plays`` plays of planted tastes, loaded
    as the taste stage's and the batch job's documents (:func:`fold_listening`, a few minutes for 100,000
    users; the others are cold starts).
    Loopback only; bounded by the arguments."""
    from core.settings import load
    from devstack.kafka import LocalKafka, free_port, port_open
    from devstack.supervisor import Child
    from playback.auth import issue_token
    from topics.admin import create_topics

    tmp = Path(tempfile.mkdtemp(prefix="playlog-apibench-"))
    broker = None
    server = None
    try:
        if bootstrap is None and kafka:
            broker = LocalKafka(tmp / "kafka", port=free_port(), controller_port=free_port(), heap="512m")
            broker.start(timeout=120)
            bootstrap = broker.bootstrap
        port = free_port()
        env = dict(os.environ)
        env.update(PLAYLOG_BOOTSTRAP_SERVERS=bootstrap or "127.0.0.1:1", PLAYLOG_TOPIC_PREFIX=f"apibench{os.getpid()}.",
                   PLAYLOG_TOKEN_SECRET=TOKEN_SECRET, PLAYLOG_DATA_DIR=str(tmp / "data"),
                   PLAYLOG_LOG_LEVEL="WARNING")
        if kafka:
            create_topics(load(env))
        all_users = max(users, recs_users)
        history_users = min(history_users, all_users)
        server = Child("bench-api", [sys.executable, "-m", "benchmarks.api", "serve", str(port), str(tracks),
                                     str(all_users), str(segments), "kafka" if kafka else "none",
                                     str(history_users), str(history_plays)],
                       env, tmp / "server.log").start()
        deadline = time.monotonic() + 120 + all_users / 1000 + history_users * history_plays / 100
        while not port_open("127.0.0.1", port):
            if not server.alive() or time.monotonic() > deadline:
                raise RuntimeError("the bench API server did not start: " + server.tail(40))
            time.sleep(0.1)
        now = time.time()
        tokens = [issue_token(f"bu{u}", TOKEN_SECRET, now=now, ttl=3600) for u in range(all_users)]
        play_tokens = tokens[:users]
        rng = random.Random(seed)

        async def main() -> ApiBenchResult:
            await _run_rate(port, 1000, 2.0, play_tokens, tracks, connections, rng)  # warm-up (not reported)
            at = await _run_rate(port, rate, seconds, play_tokens, tracks, connections, rng)
            result = ApiBenchResult(at, tracks=tracks, users=users, segments_per_rung=segments,
                                    broker=bootstrap or "none (events folded in process)", recs_users=all_users,
                                    history_users=history_users, history_plays=history_plays)
            if at.errors == 0 and at.achieved_rps >= 0.97 * rate:
                result.highest_sustained_rps = at.achieved_rps
            for route in ("home", "recommendations") if recs_seconds > 0 else ():
                step = await _run_recs_rate(port, route, recs_rate, recs_seconds, tokens, tracks, connections, rng)
                result.recs.append(step)
                setattr(result, f"{route}_p95_ms", step.p95_ms)
                setattr(result, f"{route}_achieved_rps", step.achieved_rps)
                result.recs_rate = recs_rate
            for r in ladder:
                step = await _run_rate(port, r, ladder_seconds, play_tokens, tracks, connections, rng)
                result.ladder.append(step)
                if step.errors or step.achieved_rps < 0.97 * r:
                    break
                result.highest_sustained_rps = max(result.highest_sustained_rps, step.achieved_rps)
            return result

        return asyncio.run(main())
    finally:
        if server is not None:
            server.stop(15)
        if broker is not None:
            broker.stop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":  # the bench server entry point
    if len(sys.argv) in (7, 9) and sys.argv[1] == "serve":
        logging.basicConfig(level=logging.WARNING)
        history = (int(sys.argv[7]), int(sys.argv[8])) if len(sys.argv) == 9 else (0, 0)
        serve(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "kafka",
              *history)
    else:
        sys.exit("usage: python -m benchmarks.api serve PORT TRACKS USERS SEGMENTS kafka|none "
                 "[HISTORY_USERS PLAYS]")
