-- cfg_private.rule_findings takes the rules' view of the content, so a report builds it
-- once per save (functions/35_validation.sql); the two-argument form is replaced.
drop function if exists cfg_private.rule_findings(cfg.validation_rules, jsonb);
