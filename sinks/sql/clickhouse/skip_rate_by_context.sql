-- Skip rate by playback context (context_uri; '(none)' when played without one), in parts per million.
SELECT ifNull(context_uri, '(none)') AS context, count() AS plays,
       sum(skipped) AS skips,
       intDiv(sum(skipped) * 1000000, count()) AS skip_rate_ppm
FROM plays FINAL
GROUP BY context
ORDER BY context
