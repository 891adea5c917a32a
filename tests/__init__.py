
import os

# Wide enough that no CLI line (a `detail:` JSON) is wrapped: rich reads COLUMNS once, when
# cli.common makes its consoles, in whichever test first imports the CLI (this package
# is imported before any of them).
os.environ["COLUMNS"] = "1000"
