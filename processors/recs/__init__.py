"""Recommendations: item-item collaborative filtering (:mod:`.similarity`), candidate sources and a
context-aware ranker with filters (:mod:`.ranker`), and shelves (:mod:`.shelves`): Discover Weekly,
Daily Mix, "Because you listened to", radio, Spotify-style ``recommend`` and the cold start.

Everything here is pure and deterministic: the same inputs give the same output, ties break by id.
"""
