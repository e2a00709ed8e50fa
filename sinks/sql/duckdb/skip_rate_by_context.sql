-- Skip rate by playback context (context_uri; '(none)' when played without one), in parts per million.
SELECT coalesce(context_uri, '(none)') AS context, count(*) AS plays,
       count(*) FILTER (WHERE skipped) AS skips,
       (count(*) FILTER (WHERE skipped) * 1000000) // count(*) AS skip_rate_ppm
FROM plays
GROUP BY context
ORDER BY context
