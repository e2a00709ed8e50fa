"""The thin playback API and the CDN host (signed segment URLs, Range requests)."""
