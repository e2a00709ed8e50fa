-- Top 10 tracks (canonical id) by streams per country and day; ties by track_id.
SELECT country, day, track_id, streams
FROM (
  SELECT country, day, assumeNotNull(canon) AS track_id, count() AS streams
  FROM plays FINAL WHERE is_stream = 1
  GROUP BY country, day, track_id
)
ORDER BY country, day, streams DESC, track_id
LIMIT 10 BY country, day
