"""cfgctl's shared Python core and long-running workers (DESIGN.md §1, §6)."""
