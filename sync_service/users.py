"""Creating users: through Supabase Auth's admin API on a hosted project, or straight
into auth.users on the embedded stack, where GoTrue cannot run. One interface, two paths."""

from __future__ import annotations

import os
from typing import Protocol

import psycopg

from .db import CfgError


class UserDirectory(Protocol):
    def create_user(self, email: str, password: str) -> dict: ...


def _check(email: str, password: str) -> None:
    if "@" not in email or len(email) > 320 or email.strip() != email:
        raise CfgError(f"{email!r} is not an email address", "PT422")
    if len(password) < 6:
        raise CfgError("passwords need at least 6 characters", "PT422")


class SqlUserDirectory:
    """The embedded stack: write auth.users as GoTrue would (bcrypt hash, confirmed)."""

    def __init__(self, db_url: str):
        self.db_url = db_url

    def create_user(self, email: str, password: str) -> dict:
        _check(email, password)
        with psycopg.connect(self.db_url) as conn:
            mark = conn.execute(
                "select obj_description(to_regnamespace('auth'), 'pg_namespace')"
            ).fetchone()[0]
            if mark != "cfgctl embedded shim of Supabase Auth":
                raise CfgError(
                    "this database's auth schema belongs to Supabase Auth: set "
                    "CFGCTL_SUPABASE_URL and CFGCTL_SUPABASE_SERVICE_KEY to create users through it"
                )
            try:
                row = conn.execute(
                    """
                    insert into auth.users (email, encrypted_password, email_confirmed_at,
                                            raw_app_meta_data)
                    values (lower(%s), extensions.crypt(%s, extensions.gen_salt('bf')), now(),
                            '{"provider": "email", "providers": ["email"]}')
                    returning id, email
                    """,
                    (email, password),
                ).fetchone()
            except psycopg.errors.UniqueViolation as exc:
                raise CfgError(f"a user with email {email!r} already exists", "PT409") from exc
        return {"id": str(row[0]), "email": row[1]}


class SupabaseUserDirectory:
    """A hosted project: Supabase Auth's admin API (POST /auth/v1/admin/users)."""

    def __init__(self, url: str, service_key: str):
        from supabase_auth import SyncGoTrueAdminAPI  # only needed for hosted projects

        self.api = SyncGoTrueAdminAPI(
            url=f"{url.rstrip('/')}/auth/v1",
            headers={"apikey": service_key, "Authorization": f"Bearer {service_key}"},
        )

    def create_user(self, email: str, password: str) -> dict:
        _check(email, password)
        from supabase_auth.errors import AuthApiError

        try:
            response = self.api.create_user(
                {"email": email, "password": password, "email_confirm": True}
            )
        except AuthApiError as exc:
            code = "PT409" if exc.status == 422 and "already" in exc.message else "PT422"
            raise CfgError(f"Supabase Auth refused: {exc.message}", code) from exc
        return {"id": str(response.user.id), "email": response.user.email}


def user_directory(db_url: str) -> UserDirectory:
    url = os.environ.get("CFGCTL_SUPABASE_URL")
    key = os.environ.get("CFGCTL_SUPABASE_SERVICE_KEY")
    if url and key:
        return SupabaseUserDirectory(url, key)
    return SqlUserDirectory(db_url)
