"""The pure manifest builder (playback.manifest): tiers, signed segment URLs, expiry, loudness gain.

Expected values come from spec/api.md ("free: up to 160 kbps; premium: all", segment URLs signed for
the CDN, ``expires_at``) and the API's documented policy (URLs live 3600 s from the start of the
signing minute; gain toward -14 LUFS, a boost capped so the true peak stays <= -1 dBTP), written
here as hand-computed literals.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from playback.manifest import build_manifest, gain_db
from playback.signing import Signer

CDN = "http://cdn.test"
KEYS = {"k1": "secret-one", "k0": "old-secret"}
NOW = 1_780_000_020  # a whole minute (1_780_000_020 = 29_666_667 * 60)


def rung(file_id: str, kbps: int, lufs: float = -14.0, peak: float = -6.0, count: int = 3) -> dict:
    return {"file_id": file_id, "codec": "aac", "container": "adts", "bitrate_kbps": kbps,
            "sample_rate_hz": 44100, "segment_ms": 10_000, "segment_count": count, "byte_size": 1000,
            "loudness_lufs": lufs, "true_peak_dbtp": peak}


LADDER = [rung("f320", 320), rung("f96", 96, count=2), rung("f256", 256), rung("f160", 160, count=4),
          rung("f161", 161)]


def manifest(product: str, now: float = NOW, ladder: list[dict] | None = None, **kw: str) -> dict:
    return build_manifest(LADDER if ladder is None else ladder, product, Signer(KEYS), now, cdn_base=CDN,
                          track_id=kw.get("track_id", "t1"), canonical_id=kw.get("canonical_id"))


def test_free_tier_gets_only_rungs_up_to_160_kbps() -> None:
    m = manifest("free")
    assert [r["bitrate_kbps"] for r in m["rungs"]] == [96, 160]
    assert [r["file_id"] for r in m["rungs"]] == ["f96", "f160"]
    assert m["product"] == "free"


def test_premium_gets_every_rung_in_bitrate_order() -> None:
    m = manifest("premium")
    assert [r["bitrate_kbps"] for r in m["rungs"]] == [96, 160, 161, 256, 320]


def test_every_segment_url_is_signed_and_verifies() -> None:
    signer = Signer(KEYS)
    m = manifest("premium")
    for r in m["rungs"]:
        assert len(r["segments"]) == r["segment_count"]
        for k, url in enumerate(r["segments"]):
            parts = urlsplit(url)
            assert f"{parts.scheme}://{parts.netloc}" == CDN
            path = unquote(parts.path)
            assert path == f"/audio/{r['file_id']}/{k}"
            q = {name: values[0] for name, values in parse_qs(parts.query).items()}
            assert q["kid"] == "k1"  # the first key of the ring signs
            assert q["exp"] == str(NOW + 3600)
            assert signer.verify(path, q["exp"], q["kid"], q["sig"], now=NOW).ok
            assert signer.verify(path, q["exp"], q["kid"], q["sig"], now=NOW + 3599).ok
            assert signer.verify(path, q["exp"], q["kid"], q["sig"], now=NOW + 3600).reason == "url expired"
            other = f"/audio/{r['file_id']}/{k + 1}"
            assert not signer.verify(other, q["exp"], q["kid"], q["sig"], now=NOW).ok
            # the URL is exactly what the signer hands out for that segment
            assert url == signer.sign_segment_url(CDN, r["file_id"], k, now=NOW, ttl=3600)


def test_expires_at_is_clock_plus_ttl() -> None:
    m = manifest("free")
    assert m["expires_at"] == 1_780_003_620  # NOW + 3600
    assert m["expires_at_iso"].startswith("2026-05-28T")
    # within the same signing minute, the URLs (and their expiry) do not change
    later = manifest("free", now=NOW + 59.9)
    assert later["expires_at"] == 1_780_003_620 and later["rungs"] == m["rungs"]
    assert manifest("free", now=NOW + 60)["expires_at"] == 1_780_003_680


def test_loudness_gain_toward_minus_14_lufs_capped_by_true_peak() -> None:
    assert gain_db(-20.0, -10.0) == 6.0  # -20 LUFS: +6 dB, peak -10 + 6 = -4 dBTP: fine
    assert gain_db(-10.0, -0.5) == -4.0  # too loud: cut 4 dB
    assert gain_db(-14.0, -3.0) == 0.0
    assert gain_db(-16.0, -3.0) == 2.0  # peak -3 + 2 = -1 dBTP: exactly at the ceiling
    assert gain_db(-20.0, -2.0) == 1.0  # +6 wanted, the peak allows only +1
    assert gain_db(-20.0, 0.5) == 0.0  # peak already above -1: no boost
    ladder = [rung("q", 96, lufs=-20.0, peak=-10.0), rung("l", 160, lufs=-10.0, peak=-0.5)]
    m = manifest("free", ladder=ladder)
    assert {r["file_id"]: r["gain_db"] for r in m["rungs"]} == {"q": 6.0, "l": -4.0}
    assert m["target_lufs"] == -14.0


def test_alias_request_is_linked_to_the_canonical_track() -> None:
    m = manifest("premium", track_id="t1b", canonical_id="t1")
    assert m["track_id"] == "t1" and m["uri"] == "spotify:track:t1"
    assert m["linked_from"] == {"id": "t1b", "uri": "spotify:track:t1b"}
    assert "linked_from" not in manifest("premium")
