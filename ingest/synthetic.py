"""A synthetic catalog for demos and benchmarks: deterministic for a seed, generated as a stream.

``generate(n, seed)`` yields in-memory events (valid per schema) for ``n`` canonical tracks:
``artist.ingested``, ``album.ingested``, ``track.ingested`` with rightsholder splits summing to
1,000,000 ppm, ``rights.changed`` across 20 territories (most tracks licensed everywhere, some
in a subset, some blocked in a territory, some with licence windows), alias uploads (a second
``track.ingested`` of the same ISRC under another track_id, later, from another distributor)
and a few ``track.taken_down``. Nothing is held in memory beyond the current album, so a
million tracks stream in constant memory.

With ``audio_tracks=K`` the first K tracks are given real masters: ``render_master`` synthesizes
them (chords, bass, drums, noise, each at its own loudness), and ``SyntheticCatalog.ingest_audio``
writes them with sidecars and runs the real ingest (ladder, store, ``track.ingested`` +
``audio.encoded``). Their ``track.ingested`` is therefore not in ``events()``: the ingest of the
master emits it, with the measured duration.
"""

from __future__ import annotations

import random
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from core.timefmt import format_ts, parse_ts

TERRITORIES = (
    "US", "GB", "DE", "FR", "SE", "NO", "DK", "FI", "NL", "BE",
    "ES", "IT", "PL", "BR", "MX", "CA", "AU", "JP", "IN", "ZA",
)
GENRES = (
    "pop", "rock", "indie", "hip-hop", "rap", "r&b", "soul", "jazz", "blues", "classical", "electronic",
    "house", "techno", "ambient", "folk", "country", "metal", "punk", "reggae", "latin", "k-pop",
    "afrobeats", "funk", "disco", "singer-songwriter",
)
_ADJ = (
    "Velvet Silver Neon Golden Quiet Electric Paper Crystal Midnight Wild Broken Hidden Lunar Solar "
    "Burning Frozen Hollow Scarlet Violet Lost Northern Southern Distant Gentle Restless Static Cosmic "
    "Bitter Sweet Faded Brave Little Royal Savage Tender Empty Endless Secret Open Dark Bright"
).split()
_NOUN = (
    "Harbor Echo River Owls Parade Machines Lights Hearts Wolves Gardens Tides Satellites Ghosts Mirrors "
    "Dreams Cities Rivals Saints Foxes Bells Horizon Atlas Orchid Comet Signal Lantern Canyon Meadow "
    "Engine Circus Forest Ocean Thunder Station Valley Kingdom Arrows Waves Embers Shadows"
).split()
_FIRST = (
    "Ana Leo Maya Omar Ines Jonas Sofia Kai Lena Noah Aisha Mateo Elif Yuki Priya Liam Zoe Ravi Nora "
    "Emil Sara Tariq Mila Hugo Ida Felix Alma Theo Lucia Sami"
).split()
_LAST = (
    "Berg Costa Novak Silva Lind Okafor Tanaka Moreau Kowalski Haddad Jensen Rossi Nakamura Patel Weber "
    "Larsen Duarte Ivanova Mensah Fischer Alves Kaur Santos Nilsson Garcia Dubois Muller Sato Khan Ortiz"
).split()
_WORDS = (
    "love night fire summer rain heart road home light dance stay forever gold river wild run fall "
    "dream alone tonight again blue stars city morning ghost echo shadow wave slow higher closer "
    "away back young paper glass storm silence sun moon".split()
)
_LABELS = "Records Music Recordings Sound Audio Collective Editions".split()
_DISTRIBUTORS = ("tunecore", "distrokid", "cdbaby", "believe", "the-orchard", "awal", "ingrooves", "fuga")
_REASONS = ("rights dispute", "DMCA notice", "label request", "duplicate content", "licence expired")
_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DEFAULT_START = "2026-01-01T00:00:00Z"
DAY_MS = 86_400_000


@dataclass(frozen=True)
class AudioTrack:
    """A track that gets a real master: its track.ingested fields (JSON form) and the sound to make."""

    track: dict  # track.ingested fields without duration_ms (the master's decides it)
    occurred_at: int
    duration_ms: int
    level_dbfs: float  # RMS target of the rendered master (different per track)
    seed: int


def _b36(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 36)
        out.append(_B36[r])
    return "".join(reversed(out))


def split_ppm(rng: random.Random, k: int) -> list[int]:
    """k positive shares summing to exactly 1,000,000."""
    if k <= 1:
        return [1_000_000]
    cuts = sorted(rng.sample(range(1, 1_000_000), k - 1))
    bounds = [0, *cuts, 1_000_000]
    return [b - a for a, b in zip(bounds, bounds[1:], strict=False)]


class SyntheticCatalog:
    """Deterministic synthetic catalog; ``events()`` streams it, ``audio`` lists the tracks with masters."""

    def __init__(
        self,
        n_tracks: int,
        seed: int = 0,
        *,
        start: str | int = DEFAULT_START,
        step_ms: int = 60_000,
        audio_tracks: int = 0,
        audio_seconds: float = 30.0,
        territories: tuple[str, ...] = TERRITORIES,
        alias_rate: float = 0.02,
        takedown_rate: float = 0.002,
        partial_rate: float = 0.15,
        block_rate: float = 0.03,
        window_rate: float = 0.05,
    ):
        if n_tracks < 0 or audio_tracks < 0:
            raise ValueError("track counts must not be negative")
        self.n = n_tracks
        self.seed = seed
        self.start_ms = parse_ts(start) if isinstance(start, str) else int(start)
        self.step_ms = step_ms
        self.audio_tracks = min(audio_tracks, n_tracks)
        self.audio_seconds = audio_seconds
        self.territories = territories
        self.alias_rate, self.takedown_rate = alias_rate, takedown_rate
        self.partial_rate, self.block_rate, self.window_rate = partial_rate, block_rate, window_rate
        self.audio: list[AudioTrack] = []
        self.counts: dict[str, int] = {}
        self.tracks_done = 0

    # -- the stream ----------------------------------------------------------------------------
    def events(self) -> Iterator[dict]:
        rng = random.Random(self.seed)
        s = self.seed
        n_labels = max(10, self.n // 500)
        n_artists_hint = max(5, self.n // 25)
        self._seq = 0
        self._prefix = f"syn{s}-"
        self.counts = {}
        self.audio = []
        ev = self._ev

        artists: list[tuple[str, list[str]]] = []  # (artist_id, genres)
        label_counter = [0] * n_labels
        track_no = album_no = 0
        t = self.start_ms
        territories = self.territories
        while track_no < self.n:
            # an artist: mostly new ones early, then reuse (a long tail of small artists)
            if not artists or rng.random() < max(0.25, 1 - len(artists) / n_artists_hint):
                artist_id = f"art-{s}-{len(artists):06d}"
                genres = rng.sample(GENRES, rng.choice((1, 1, 2)))
                name = (
                    f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}" if rng.random() < 0.6
                    else f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
                )
                artists.append((artist_id, genres))
                yield ev("artist.ingested", t, artist_id=artist_id, name=name, genres=genres)
            else:
                artist_id, genres = artists[int(len(artists) * rng.random() ** 2)]  # popular ones get more
            label = int(n_labels * rng.random() ** 1.5)
            distributor = _DISTRIBUTORS[label % len(_DISTRIBUTORS)]
            album_id = f"alb-{s}-{album_no:06d}"
            album_no += 1
            size = rng.choice((1, 1, 1, 2, 4, 5, 8, 10, 12, 14))
            release = t - rng.randrange(0, 3650) * DAY_MS
            release_date = format_ts(release)[:10]
            yy = release_date[2:4]
            country = territories[label % len(territories)]
            yield ev(
                "album.ingested", t, album_id=album_id,
                title=" ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 3))).title(),
                artist_ids=[artist_id], release_date=release_date,
                label=f"{_ADJ[label % len(_ADJ)]} {_LABELS[label % len(_LABELS)]} {label}",
                artwork_uri=f"https://img.example/{album_id}.jpg",
            )
            for _ in range(size):
                if track_no >= self.n:
                    break
                track_id = f"trk-{s}-{track_no:07d}"
                c = label_counter[label]
                label_counter[label] += 1
                isrc = f"{country}-{_b36(label + n_labels * (c // 100_000), 3)}-{yy}-{c % 100_000:05d}"
                holders = [f"rh-lbl-{s}-{label:04d}", f"rh-pub-{artist_id}"]
                if rng.random() < 0.3:
                    holders.append(f"rh-pub-{s}-{rng.randrange(n_labels * 3):05d}")
                if rng.random() < 0.2:
                    holders.append(f"rh-dist-{distributor}")
                holders = list(dict.fromkeys(holders))[: rng.randint(1, len(holders))]
                shares = split_ppm(rng, len(holders))
                track = {
                    "track_id": track_id, "isrc": isrc,
                    "title": " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 4))).capitalize(),
                    "album_id": album_id, "artist_ids": [artist_id], "genres": genres,
                    "explicit": rng.random() < 0.12, "distributor": distributor,
                    "rightsholders": [
                        {"rightsholder_id": h, "share_ppm": p} for h, p in zip(holders, shares, strict=True)
                    ],
                }
                if track_no < self.audio_tracks:
                    level = -26.0 + 18.0 * (track_no / max(1, self.audio_tracks - 1)) if self.audio_tracks > 1 else -14.0
                    self.audio.append(AudioTrack(track, t, int(self.audio_seconds * 1000), level, s * 1_000_003 + track_no))
                else:
                    duration = max(30_000, int(rng.gauss(210_000, 50_000)))
                    yield ev("track.ingested", t, duration_ms=duration, **track)
                yield from self._rights(rng, track_id, t)
                if rng.random() < self.alias_rate:
                    alias = dict(track, track_id=f"trk-{s}-{track_no:07d}-a",
                                 distributor=_DISTRIBUTORS[(label + 3) % len(_DISTRIBUTORS)])
                    alias["rightsholders"] = [
                        {"rightsholder_id": h, "share_ppm": p}
                        for h, p in zip(holders, split_ppm(rng, len(holders)), strict=True)
                    ]
                    at = t + rng.randrange(1, 60) * DAY_MS
                    yield ev("track.ingested", at, duration_ms=max(30_000, int(rng.gauss(210_000, 50_000))), **alias)
                if rng.random() < self.takedown_rate:
                    where = ["*"] if rng.random() < 0.5 else rng.sample(territories, rng.randint(1, 3))
                    yield ev("track.taken_down", t + rng.randrange(1, 90) * DAY_MS, track_id=track_id,
                             territories=where, reason=rng.choice(_REASONS))
                track_no += 1
                self.tracks_done = track_no
                t += self.step_ms

    def _ev(self, event_type: str, at: int, **fields: object) -> dict:
        self._seq += 1
        self.counts[event_type] = self.counts.get(event_type, 0) + 1
        return {"type": event_type, "event_id": f"{self._prefix}{self._seq:x}", "occurred_at": at, **fields}

    def _rights(self, rng: random.Random, track_id: str, t: int) -> list[dict]:
        ev = self._ev
        terrs = self.territories
        if rng.random() < self.partial_rate:
            terrs = tuple(rng.sample(terrs, rng.randint(max(1, len(terrs) // 3), len(terrs))))
        blocked: set[str] = set()
        windows: dict[str, tuple[int | None, int | None]] = {}
        if rng.random() < self.block_rate:
            blocked = set(rng.sample(terrs, min(len(terrs), rng.randint(1, 2))))
        if rng.random() < self.window_rate:
            for terr in rng.sample(terrs, min(len(terrs), rng.randint(1, 3))):
                kind = rng.random()
                start = t + rng.randrange(0, 60) * DAY_MS
                end = start + rng.randrange(30, 365) * DAY_MS
                windows[terr] = (start, end) if kind < 0.5 else ((None, end) if kind < 0.8 else (start, None))
        if not blocked and not windows:  # the common case, kept cheap: one plain dict per territory
            seq0, prefix = self._seq, self._prefix
            self._seq += len(terrs)
            self.counts["rights.changed"] = self.counts.get("rights.changed", 0) + len(terrs)
            return [
                {"type": "rights.changed", "event_id": f"{prefix}{seq0 + i:x}", "occurred_at": t,
                 "track_id": track_id, "territory": terr, "allowed": True, "valid_from": None, "valid_to": None}
                for i, terr in enumerate(terrs, 1)
            ]
        out = []
        for terr in terrs:
            frm, to = windows.get(terr, (None, None))
            out.append(ev("rights.changed", t, track_id=track_id, territory=terr, allowed=terr not in blocked,
                          valid_from=frm, valid_to=to))
        return out

    # -- real audio for the first K tracks ----------------------------------------------------
    def write_masters(self, directory: str | Path, sample_rate: int = 44_100) -> list[Path]:
        """Render every audio track to ``<track_id>.wav`` + sidecar in ``directory`` (after ``events()``)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for a in self.audio:
            path = directory / f"{a.track['track_id']}.wav"
            if not path.exists():
                write_wav(path, render_master(a.duration_ms, a.level_dbfs, a.seed, sample_rate), sample_rate)
            sidecar = {**a.track, "occurred_at": format_ts(a.occurred_at)}
            path.with_suffix(".json").write_bytes(orjson.dumps(sidecar, option=orjson.OPT_INDENT_2))
            paths.append(path)
        return paths


def ingest_audio(catalog: SyntheticCatalog, data_dir: str | Path, sink, *, workers: int = 2,
                 progress: bool = True):
    """Render the catalog's audio tracks under ``<data_dir>/masters/synthetic-<seed>/`` and ingest them.

    Returns the ``IngestReport``; events (track.ingested + audio.encoded) go to ``sink``.
    """
    from ingest.run import ingest_directory

    directory = Path(data_dir) / "masters" / f"synthetic-{catalog.seed}"
    catalog.write_masters(directory)
    first = min((a.occurred_at for a in catalog.audio), default=catalog.start_ms)
    counter = iter(range(1 << 62))
    return ingest_directory(directory, data_dir, sink, occurred_at=first, workers=workers, progress=progress,
                            new_id=lambda: f"syn{catalog.seed}-audio-{next(counter):x}")  # deterministic too


def generate(n: int, seed: int = 0, **options: object) -> Iterator[dict]:
    """The events of ``SyntheticCatalog(n, seed, **options)`` (see the module docstring)."""
    return SyntheticCatalog(n, seed, **options).events()  # type: ignore[arg-type]


# -- synthesized masters ------------------------------------------------------------------------
def render_master(duration_ms: int, level_dbfs: float, seed: int, sample_rate: int = 44_100) -> np.ndarray:
    """A stereo float32 (2, n) piece: chord progression, bass, kick/snare/hats, a noise bed.

    The mix is scaled to an RMS of ``level_dbfs`` and soft-limited below full scale.
    """
    rng = np.random.default_rng(seed)
    sr = sample_rate
    n = max(1, duration_ms * sr // 1000)
    out = np.zeros((2, n), dtype=np.float64)
    bpm = float(rng.integers(80, 141))
    beat = int(sr * 60 / bpm)
    root = 110.0 * 2 ** (int(rng.integers(0, 12)) / 12)
    progression = ((0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12))  # I V vi IV
    bar = 4 * beat
    t_bar = np.arange(bar) / sr
    env = np.exp(-t_bar * 1.2)
    for b, start in enumerate(range(0, n, bar)):
        chord = progression[b % 4]
        seg = np.zeros(bar)
        for semis in chord:
            f = root * 2 * 2 ** (semis / 12)
            for h, amp in ((1, 1.0), (2, 0.4), (3, 0.2)):
                seg += amp * np.sin(2 * np.pi * f * h * t_bar + rng.uniform(0, 2 * np.pi))
        seg *= env * 0.15
        bass = 0.3 * np.sin(2 * np.pi * root * 2 ** (chord[0] / 12) / 2 * t_bar) * np.exp(-t_bar * 0.8)
        m = min(bar, n - start)
        out[0, start : start + m] += seg[:m] * 0.9 + bass[:m]
        out[1, start : start + m] += seg[:m] * 1.1 + bass[:m]
    # drums
    kl = int(0.25 * sr)
    tk = np.arange(kl) / sr
    kick = np.sin(2 * np.pi * (45 + 80 * np.exp(-tk * 25)) * tk) * np.exp(-tk * 12)
    sl = int(0.18 * sr)
    ts = np.arange(sl) / sr
    snare = (rng.standard_normal(sl) * 0.6 + np.sin(2 * np.pi * 185 * ts)) * np.exp(-ts * 22)
    hl = int(0.05 * sr)
    hat = np.diff(rng.standard_normal(hl + 1)) * np.exp(-np.arange(hl) / sr * 80) * 0.25
    for k, start in enumerate(range(0, n, beat // 2)):
        hit = [(hat, 0.6, 1.0)]
        if k % 2 == 0:
            hit.append((kick, 0.8, 0.8) if (k // 2) % 2 == 0 else (snare, 0.5, 0.6))
        for sound, left, right in hit:
            m = min(len(sound), n - start)
            out[0, start : start + m] += sound[:m] * left
            out[1, start : start + m] += sound[:m] * right
    out += rng.standard_normal((2, n)) * 0.01  # noise bed
    rms = float(np.sqrt(np.mean(out**2))) or 1.0
    out *= 10 ** (level_dbfs / 20) / rms
    if np.abs(out).max() > 0.9:  # soft limiter: loud masters stay below full scale
        out = 0.98 * np.tanh(out / 0.98)
    return out.astype(np.float32)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM WAV of planar float samples (channels, n)."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(samples.shape[0])
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.ascontiguousarray(pcm.T).tobytes())
