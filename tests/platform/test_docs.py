"""Every RPC is documented with its arguments (issue 9): in the README's tables or a
docs/<area>.md page the README links."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def documentation() -> str:
    return "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def test_every_rpc_is_documented_with_its_arguments(conn):
    rows = conn.execute(
        "select p.proname, coalesce(array_to_string(p.proargnames[1:p.pronargs], ', '), '') as args "
        "from pg_proc p where p.pronamespace = 'cfg'::regnamespace order by 1"
    ).fetchall()
    docs = documentation()

    def documented(name: str, args: str) -> bool:
        # `name(a, b = default, c)`: the arguments in order, defaults optional.
        names = [a for a in args.split(", ") if a]
        pattern = r"`" + re.escape(name) + r"\(" + ", ".join(re.escape(a) + r"(?: = [^,)`]*)?" for a in names) + r"\)"
        return re.search(pattern, docs) is not None

    missing = [f"{r['proname']}({r['args']})" for r in rows if not documented(r["proname"], r["args"])]
    assert missing == []


def test_the_readme_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    pages = [p.name for p in (ROOT / "docs").glob("*.md")]
    assert pages
    assert [p for p in pages if f"docs/{p}" not in readme] == []
