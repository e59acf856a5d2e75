"""Who may use the editing UI: logins from `--auth NAME:PASSWORD` and `--password-file`, and when one is required.

On this machine only (the default) no login is needed. Served on the network (`--listen`, or any address other
than a loopback one) the app refuses to start without a login, unless the writer passes `--no-login`.
A password file has one `name:password` per line; blank lines and lines starting with `#` are skipped.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from illustrator.errors import InvalidInput
from illustrator.settings import Settings

logger = logging.getLogger(__name__)

Login = tuple[str, str]  # (name, password)
LoginCheck = Callable[[str, str], bool]

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
    return name, password


def read_password_file(path: Path) -> tuple[Login, ...]:
    """The logins in a password file (one `name:password` per line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        mode = Path(path).stat().st_mode
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"Could not read the password file {path}.") from e
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
    known = tuple((name.encode(), password.encode()) for name, password in settings.logins)

    def check(name: str, password: str) -> bool:
        given = (str(name).encode(), str(password).encode())
        matched = False
        for known_name, known_password in known:  # compare with every login, so timing tells nothing
            same = hmac.compare_digest(given[0], known_name) & hmac.compare_digest(given[1], known_password)
            matched |= same
        if not matched:
            logger.warning("A login failed for the name %r", str(name)[:64])
        return matched

    return check
