-- Listening time per product and period: total ms played and hours (rounded to 3 decimals).
SELECT period, product, count(*) AS plays, sum(ms)::BIGINT AS total_ms,
       round(sum(ms) / 3600000.0, 3) AS hours
FROM plays
GROUP BY period, product
ORDER BY period, product
