-- The day's sales per store. The day's rows are replaced, so re-runs and backfills are idempotent.
CREATE TABLE IF NOT EXISTS `{{ params.dataset }}.sales_by_store_day` (
  sale_date DATE,
  store_id INT64,
  city STRING,
  orders INT64,
  items INT64,
  revenue FLOAT64
);

DELETE FROM `{{ params.dataset }}.sales_by_store_day` WHERE sale_date = DATE(@run_date);

INSERT INTO `{{ params.dataset }}.sales_by_store_day` (sale_date, store_id, city, orders, items, revenue)
SELECT sale_date, store_id, city, COUNT(*), SUM(quantity), ROUND(SUM(amount), 2)
FROM `{{ params.dataset }}.daily_sales_staging`
WHERE sale_date = DATE(@run_date)
GROUP BY sale_date, store_id, city;
