GRANTS: dict[str, str] = {}
