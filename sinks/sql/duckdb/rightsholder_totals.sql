-- Streams and royalty totals (micros) per rightsholder and period, from the statements.
SELECT period, rightsholder_id, sum(streams)::BIGINT AS streams, sum(amount_micros)::BIGINT AS amount_micros
FROM statements
WHERE streams > 0
GROUP BY period, rightsholder_id
ORDER BY period, rightsholder_id
