-- Revenue per store for the run's day, joining the two imported tables (a template file: .sql).
CREATE OR REPLACE TABLE `{{ params.dataset }}.revenue` AS
SELECT s.store_id, st.name, SUM(s.amount) AS revenue, COUNT(*) AS sales
FROM `{{ params.dataset }}.sales` AS s
JOIN `{{ params.dataset }}.stores` AS st ON st.store_id = s.store_id
WHERE s.sale_date = DATE(@day)
GROUP BY s.store_id, st.name
