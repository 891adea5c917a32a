"""The `cfgctl` command-line interface."""
