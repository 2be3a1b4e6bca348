"""What the product tells people outside it: webhook alerts and report notices (notify), recorded in
instagram.notifications. Below the Dagster layer: plain Python over the database and HTTP."""
