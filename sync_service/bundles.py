"""Export bundles: where `cfgctl export` writes a document and `cfgctl import` reads one.
A bundle is a file, or on a hosted project an object in a Supabase Storage bucket,
`storage://BUCKET/PATH`, written and read through Supabase's client, storage3, with the
project's URL and service key (CFGCTL_SUPABASE_URL, CFGCTL_SUPABASE_SERVICE_KEY). The
embedded stack has no Storage service: there, bundles are files. One interface, two paths,
as for users (sync_service/users.py).

A document with secret values is only ever written encrypted, in the age format
(age-encryption.org/v1) with a passphrase (an scrypt recipient), through pyrage: a standard
format the `age` and `rage` tools decrypt too (`age -d bundle.age`)."""

from __future__ import annotations

from pathlib import Path

from .db import CfgError
from .settings import get_settings

SCHEME = "storage://"
AGE_HEADER = b"age-encryption.org/v1"


def encrypt(data: bytes, passphrase: str) -> bytes:
    from pyrage import passphrase as age

    return age.encrypt(data, passphrase)


def is_encrypted(data: bytes) -> bool:
    return data.startswith(AGE_HEADER)


def decrypt(data: bytes, passphrase: str | None) -> bytes:
    from pyrage import DecryptError
    from pyrage import passphrase as age

    if passphrase is None:
        raise CfgError("this bundle is encrypted (it holds secret values): pass --passphrase-file", "PT422")
    try:
        return age.decrypt(data, passphrase)
    except DecryptError:
        raise CfgError("cannot decrypt the bundle: wrong passphrase, or not a passphrase-encrypted age file",
                       "PT422") from None


def read_passphrase(path: Path) -> str:
    """The first line of a file (so no passphrase is ever a command-line argument)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise CfgError(f"cannot read the passphrase file {path}: {exc.strerror}", "PT422") from None
    if not lines or not lines[0]:
        raise CfgError(f"the passphrase file {path} is empty", "PT422")
    return lines[0]


def split_storage_url(url: str) -> tuple[str, str]:
    """storage://BUCKET/PATH -> (BUCKET, PATH)."""
    bucket, _, path = url.removeprefix(SCHEME).partition("/")
    if not bucket or not path or path.endswith("/"):
        raise CfgError(f"{url!r} is not storage://BUCKET/PATH/TO/FILE", "PT422")
    return bucket, path


def _storage():
    settings = get_settings()
    if not (settings.supabase_url and settings.supabase_service_key):
        raise CfgError("storage:// bundles need a hosted project: set CFGCTL_SUPABASE_URL and "
                       "CFGCTL_SUPABASE_SERVICE_KEY (locally, write the bundle to a file)", "PT422")
    import httpx  # only needed for hosted projects
    from storage3 import SyncStorageClient

    key = settings.supabase_service_key
    # Our own httpx client: storage3's default asks for HTTP/2, which needs the h2 package.
    return SyncStorageClient(f"{settings.supabase_url.rstrip('/')}/storage/v1/",
                             {"apikey": key, "Authorization": f"Bearer {key}"},
                             http_client=httpx.Client(timeout=30, follow_redirects=True))


def _storage_error(exc, url: str) -> CfgError:
    status = str(getattr(exc, "status", "") or "")
    code = {"404": "PT404", "401": "PT403", "403": "PT403", "409": "PT409"}.get(status)
    return CfgError(f"Supabase Storage refused {url}: {getattr(exc, 'message', exc)}", code)


def write_bundle(target: str, data: bytes, content_type: str) -> str:
    """Writes data to a file or a Storage object (replacing it); returns where it went."""
    if not target.startswith(SCHEME):
        Path(target).write_bytes(data)
        return target
    from storage3.exceptions import StorageApiError

    bucket, path = split_storage_url(target)
    with _storage() as client:
        try:
            client.from_(bucket).upload(path, data, {"content-type": content_type, "upsert": "true"})
        except StorageApiError as exc:
            raise _storage_error(exc, target) from None
    return target


def read_bundle(source: str) -> bytes:
    if not source.startswith(SCHEME):
        try:
            return Path(source).read_bytes()
        except OSError as exc:
            raise CfgError(f"cannot read {source}: {exc.strerror}", "PT404") from None
    from storage3.exceptions import StorageApiError

    bucket, path = split_storage_url(source)
    with _storage() as client:
        try:
            return client.from_(bucket).download(path)
        except StorageApiError as exc:
            raise _storage_error(exc, source) from None
