"""OAuth 2.0 as the Spotify accounts service does it: ``/authorize`` (authorization code + PKCE S256),
``/api/token`` (authorization_code, refresh_token, client_credentials), registered clients, scopes on
every ``/v1`` route, a per-token rate limit and CORS. See playback/oauth/server.py."""
