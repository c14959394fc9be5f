-- A stand-in with the shape of the procedure CARTO Workflows generates when you enable API access on
-- a workflow whose variables run_date and min_revenue are marked as parameters. With your own
-- workflow, delete the install_workflow task and set params.workflow_procedure to the procedure name
-- shown in the workflow's API dialog.
CREATE OR REPLACE PROCEDURE `{{ params.workflow_procedure }}`(run_date STRING, min_revenue FLOAT64)
BEGIN
  CREATE TABLE IF NOT EXISTS `{{ params.dataset }}.top_stores_daily` (
    sale_date DATE,
    store_id INT64,
    city STRING,
    revenue FLOAT64,
    revenue_rank INT64
  );
  DELETE FROM `{{ params.dataset }}.top_stores_daily` WHERE sale_date = DATE(run_date);
  INSERT INTO `{{ params.dataset }}.top_stores_daily` (sale_date, store_id, city, revenue, revenue_rank)
  SELECT sale_date, store_id, city, revenue, RANK() OVER (ORDER BY revenue DESC)
  FROM `{{ params.dataset }}.sales_by_store_day`
  WHERE sale_date = DATE(run_date) AND revenue >= min_revenue;
END
