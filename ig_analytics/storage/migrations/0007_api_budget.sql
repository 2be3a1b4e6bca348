-- The app-wide Graph API budget shared by the concurrent runs of one deployment (issue 15): Meta's X-App-Usage
-- is one figure for the whole app, but each run sees it only on its own responses. Every client writes what it
-- last saw here and reads the freshest value back (at most once a second), so a run that starts while others
-- have driven the app near its limit slows down from its first call. See ig_analytics/graph_api/app_budget.py.

CREATE TABLE instagram.api_budget (
    scope       text        PRIMARY KEY,          -- 'app': X-App-Usage (one row per app and deployment)
    usage_pct   real        NOT NULL,             -- highest of call_count, total_time, total_cputime (percent)
    observed_at timestamptz NOT NULL,             -- when the response carrying it arrived (newest wins)
    observed_by text                              -- host:pid of the client that saw it
);
