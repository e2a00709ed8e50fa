-- Top 10 tracks (canonical id) by streams per country and day; ties by track_id.
SELECT country, day, track_id, streams
FROM (
  SELECT country, day, canon AS track_id, count(*) AS streams
  FROM plays WHERE is_stream
  GROUP BY country, day, canon
)
QUALIFY row_number() OVER (PARTITION BY country, day ORDER BY streams DESC, track_id) <= 10
ORDER BY country, day, streams DESC, track_id
