"""Who may use the editing UI: logins from `--auth NAME:PASSWORD` and `--password-file`, and when one is required.

On this machine only (the default) no login is needed. Served on the network (`--listen`, or any address other
than a loopback one) the app refuses to start without a login, unless the writer passes `--no-login`.
A password file has one `name:password` per line; blank lines and lines starting with `#` are skipped. The password
may be an argon2 hash (`name:$argon2id$...`, made with `illustrator hash-password`); plain text is for trying the
app only. A password is at least `MIN_PASSWORD_CHARS` long; a password file others may write to is refused.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import ipaddress
import logging
import secrets
import stat
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from illustrator.errors import InvalidInput
from illustrator.settings import Settings
from illustrator.throttle import LoginThrottle

logger = logging.getLogger(__name__)

Login = tuple[str, str]  # (name, password or its argon2 hash)
LoginCheck = Callable[[str, str], Awaitable[bool]]

MIN_PASSWORD_CHARS = 8
HASH_PREFIX = "$argon2"
# The address of the client whose request is being handled; set by the server's outermost middleware.
CLIENT_ADDRESS: contextvars.ContextVar[str] = contextvars.ContextVar("client_address", default="unknown")

NEEDS_LOGIN = (
    "Serving on the network needs a login: pass --auth NAME:PASSWORD or --password-file FILE "
    "(or --no-login to serve without one)."
)


def parse_login(text: str) -> Login:
    """A `name:password` pair; InvalidInput (which never repeats the password) when it is not one."""
    name, sep, password = text.partition(":")
    name = name.strip()
    if not sep or not name or not password:
        raise InvalidInput("A login must be written NAME:PASSWORD, with a name and a password.")
    check_password(name, password)
    return name, password


def check_password(name: str, password: str) -> None:
    """Refuse a plain password shorter than `MIN_PASSWORD_CHARS` (a hash is taken as it is)."""
    if not password.startswith(HASH_PREFIX) and len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(
            f"The password for {name[:64]!r} is too short: use at least {MIN_PASSWORD_CHARS} characters."
        )


def hash_password(password: str) -> str:
    """An argon2id hash of `password`, for the password file."""
    from argon2 import PasswordHasher

    check_password("this login", password)
    return PasswordHasher().hash(password)


def read_password_file(path: Path) -> tuple[Login, ...]:
    """The logins in a password file (one `name:password` per line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        mode = Path(path).stat().st_mode
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"Could not read the password file {path}.") from e
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InvalidInput(f"The password file {path} can be changed by other users of this machine; chmod 600 it.")
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        logger.warning("The password file %s can be read by other users of this machine (chmod 600 it).", path)
    logins = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            logins.append(parse_login(line.rstrip("\r\n")))
        except InvalidInput as e:
            raise InvalidInput(f"Line {number} of the password file {path} is not NAME:PASSWORD.") from e
    if not logins:
        raise InvalidInput(f"The password file {path} has no logins in it.")
    return tuple(logins)


def collect_logins(auth: Iterable[str], password_file: Path | None) -> tuple[Login, ...]:
    """The logins given on the command line and in the password file, together."""
    logins = [parse_login(text) for text in auth]
    if password_file is not None:
        logins.extend(read_password_file(password_file))
    return tuple(logins)


def is_local(host: str) -> bool:
    """Whether `host` serves this machine only (a loopback address or `localhost`)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may well be reachable from the network


def check_access(settings: Settings) -> None:
    """Refuse, with one plain sentence, to serve on the network with neither a login nor `--no-login`."""
    if not is_local(settings.host) and not settings.logins and not settings.no_login:
        raise InvalidInput(NEEDS_LOGIN)


def blocked_paths(settings: Settings) -> list[str]:
    """Files that the web framework must never serve, whatever else it allows: the database and the models."""
    data = settings.data_dir.resolve()
    database = data / "illustrator.db"
    paths = [database, database.with_name("illustrator.db-wal"), database.with_name("illustrator.db-shm")]
    paths.append(settings.models_dir.resolve())
    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        custom = Path(url.removeprefix("sqlite:///")).expanduser().resolve()
        paths += [custom, custom.with_name(custom.name + "-wal"), custom.with_name(custom.name + "-shm")]
    return sorted({str(path) for path in paths})


def login_for(settings: Settings) -> LoginCheck | None:
    """The login check for the editing UI, or None where no login is asked for; raises where one is missing."""
    check_access(settings)
    if not settings.logins:
        if not is_local(settings.host):
            logger.warning("Serving on the network WITHOUT a login (--no-login): anyone on it can use the app.")
        return None
    for name, password in settings.logins:
        check_password(name, password)
    matches = _matcher(settings.logins)
    throttle = LoginThrottle()

    async def check(name: str, password: str) -> bool:
        name, address = str(name), CLIENT_ADDRESS.get()
        wait = throttle.reserve(name, address)
        if wait is None:  # too many failures lately: refused without looking at the password
            throttle.failed(name, address, reserved=False)
            return False
        try:
            if wait:
                await asyncio.sleep(wait)  # the event loop serves everyone else meanwhile
            matched = await asyncio.to_thread(matches, name, str(password))  # argon2 takes tens of milliseconds
        except asyncio.CancelledError:  # the client went away: its turn counts as a failure
            throttle.failed(name, address)
            raise
        if matched:
            throttle.succeeded(name, address)
        else:
            throttle.failed(name, address)
        return matched

    return check


def _matcher(logins: Iterable[Login]) -> Callable[[str, str], bool]:
    """Whether a name and password match a login; as slow for an unknown name as for a known one."""
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = PasswordHasher()
    known = tuple((name.encode(), password) for name, password in logins)
    hashed = any(password.startswith(HASH_PREFIX) for _, password in known)
    # an unknown name is checked against a decoy of the same kind, so its answer takes as long
    decoy = hasher.hash(secrets.token_hex(16)) if hashed else secrets.token_hex(16)

    def matches(name: str, password: str) -> bool:
        given = name.encode()
        entry = decoy
        for known_name, known_password in known:  # compare with every name, so timing tells nothing
            if hmac.compare_digest(given, known_name):
                entry = known_password
        if entry.startswith(HASH_PREFIX):
            try:
                return hasher.verify(entry, password) and entry is not decoy
            except (VerificationError, InvalidHashError):
                return False
        return hmac.compare_digest(password.encode(), entry.encode())

    return matches
