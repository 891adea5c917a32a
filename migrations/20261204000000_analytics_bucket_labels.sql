-- Analytics (issue 13, benchmark d): cfg_private.analytics_buckets returns each bucket with
-- its printed time (functions/96_analytics.sql): formatting each point by a function call
-- cost more than the rest of a 4,800-point chart. A result type cannot be replaced in place.
drop function if exists cfg_private.analytics_buckets(timestamptz, timestamptz, interval);
