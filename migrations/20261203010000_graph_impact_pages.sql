-- The impact radius one page at a time (issue 15, benchmark 6 (a)): cfg.impact gains
-- max_rows and cursor, and its walk stops at the level that fills the page, so a radius
-- of thousands costs a page; keys and paths are built for the listed automations only
-- (functions/44_graph.sql, 98_graph_api.sql). The replaced signatures go.
drop function if exists cfg.impact(uuid, text [], text, integer);
drop function if exists cfg_private.impact_report(uuid, text [], uuid, integer);
drop function if exists cfg_private.reach(uuid, uuid, text [], integer, boolean);
