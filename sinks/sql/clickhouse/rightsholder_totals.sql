-- Streams and royalty totals (micros) per rightsholder and period, from the statements.
-- (ClickHouse 18.16 resolves an alias before a column of the same name, hence the inner query.)
SELECT period, rightsholder_id, sum(s) AS streams, sum(a) AS amount_micros
FROM (
  SELECT period, rightsholder_id, streams AS s, amount_micros AS a
  FROM statements FINAL
  WHERE streams > 0
)
GROUP BY period, rightsholder_id
ORDER BY period, rightsholder_id
