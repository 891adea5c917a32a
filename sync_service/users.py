"""Users: through Supabase Auth's admin API on a hosted project, or straight into
auth.users on the embedded stack, where GoTrue cannot run. One interface, two paths:
create a user, send an invitation email, delete a user."""

from __future__ import annotations

import os
from typing import Protocol

import psycopg

from .db import CfgError


class UserDirectory(Protocol):
    def create_user(self, email: str, password: str) -> dict: ...

    def invite_user(self, email: str, redirect_to: str | None = None) -> dict: ...

    def delete_user(self, email: str) -> dict: ...


def _check(email: str, password: str) -> None:
    if "@" not in email or len(email) > 320 or email.strip() != email:
        raise CfgError(f"{email!r} is not an email address", "PT422")
    if len(password) < 6:
        raise CfgError("passwords need at least 6 characters", "PT422")


def _user_id(db_url: str, email: str) -> tuple[str, str]:
    """The id of the account with EMAIL (the database is the one place to look it up)."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select id, email from auth.users where lower(email) = lower(%s)", (email.strip(),)
        ).fetchone()
    if row is None:
        raise CfgError(f"no user with email {email!r}", "PT404")
    return str(row[0]), row[1]


def _require_shim(conn: psycopg.Connection, action: str) -> None:
    mark = conn.execute(
        "select obj_description(to_regnamespace('auth'), 'pg_namespace')"
    ).fetchone()[0]
    if mark != "cfgctl embedded shim of Supabase Auth":
        raise CfgError(
            "this database's auth schema belongs to Supabase Auth: set "
            f"CFGCTL_SUPABASE_URL and CFGCTL_SUPABASE_SERVICE_KEY to {action} through it"
        )


class SqlUserDirectory:
    """The embedded stack: write auth.users as GoTrue would (bcrypt hash, confirmed)."""

    def __init__(self, db_url: str):
        self.db_url = db_url

    def invite_user(self, email: str, redirect_to: str | None = None) -> dict:
        """No mailer here: the invitation row is the invitation. Whoever signs up with
        the email joins at once; an existing account accepts it (cfgctl invite accept)."""
        return {"email": email.strip().lower()}

    def delete_user(self, email: str) -> dict:
        """Exactly what GoTrue does: DELETE FROM auth.users as supabase_auth_admin."""
        with psycopg.connect(self.db_url) as conn:
            _require_shim(conn, "delete users")
            conn.execute("set local role supabase_auth_admin")
            row = conn.execute(
                "delete from auth.users where lower(email) = lower(%s) returning id, email",
                (email.strip(),),
            ).fetchone()
        if row is None:
            raise CfgError(f"no user with email {email!r}", "PT404")
        return {"id": str(row[0]), "email": row[1]}

    def create_user(self, email: str, password: str) -> dict:
        _check(email, password)
        with psycopg.connect(self.db_url) as conn:
            _require_shim(conn, "create users")
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
    """A hosted project: Supabase Auth's admin API (/auth/v1/admin/users, /auth/v1/invite)."""

    def __init__(self, url: str, service_key: str, db_url: str | None = None):
        from supabase_auth import SyncGoTrueAdminAPI  # only needed for hosted projects

        self.db_url = db_url
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

    def invite_user(self, email: str, redirect_to: str | None = None) -> dict:
        """Supabase Auth's invite email (POST /auth/v1/invite). An address that already has
        an account gets none: that person sees the invitation when signed in. Either way
        the answer is the same, so it tells nobody whether the account exists."""
        from supabase_auth.errors import AuthApiError

        options = {"redirect_to": redirect_to} if redirect_to else None
        try:
            self.api.invite_user_by_email(email.strip().lower(), options)
        except AuthApiError as exc:
            if exc.code != "email_exists" and "already" not in exc.message:
                raise CfgError(f"Supabase Auth refused: {exc.message}", "PT422") from exc
        return {"email": email.strip().lower()}

    def delete_user(self, email: str) -> dict:
        """Supabase Auth's admin delete (DELETE /auth/v1/admin/users/{id}); the id is
        looked up in the project's database."""
        from supabase_auth.errors import AuthApiError

        if self.db_url is None:
            raise CfgError("deleting a user by email needs the project's database URL (--db-url)")
        user_id, address = _user_id(self.db_url, email)
        try:
            self.api.delete_user(user_id)
        except AuthApiError as exc:
            code = "PT404" if exc.status == 404 else "PT422"
            raise CfgError(f"Supabase Auth refused: {exc.message}", code) from exc
        return {"id": user_id, "email": address}


def user_directory(db_url: str) -> UserDirectory:
    url = os.environ.get("CFGCTL_SUPABASE_URL")
    key = os.environ.get("CFGCTL_SUPABASE_SERVICE_KEY")
    if url and key:
        return SupabaseUserDirectory(url, key, db_url)
    return SqlUserDirectory(db_url)
