"""Authentication on the embedded PostgreSQL: scram-sha-256, generated passwords, an analysts' read-only role.

The passwords live in ``IG_ANALYTICS_HOME`` (mode 0600, readable by the owner only):

    postgres-password            the superuser ``postgres`` (the product's own connections)
    postgres-readonly-password   ``ig_analytics_reader``: SELECT on schema ``instagram`` of database ig_analytics,
                                 at most READER_CONNECTION_LIMIT connections at once

A cluster created by an older version (trust authentication) is upgraded in place on the next start: the
password is set while trust still lets us in, then pg_hba.conf is rewritten and the server reloaded.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SUPERUSER = "postgres"
READER = "ig_analytics_reader"
SUPERUSER_PASSWORD_FILE = "postgres-password"
READER_PASSWORD_FILE = "postgres-readonly-password"
# Of the server's max_connections (200, embedded_db): analysts' tools get at most this many, so a BI tool that
# opens a connection per chart cannot take the ones Dagster's processes and the CLI need.
READER_CONNECTION_LIMIT = 40

# Only TCP on 127.0.0.1 and the private unix socket, both with a password.
PG_HBA = (
    "# Written by ig-analytics: every connection needs a password (scram-sha-256).\n"
    "# TYPE  DATABASE  USER  ADDRESS       METHOD\n"
    "local   all       all                 scram-sha-256\n"
    "host    all       all   127.0.0.1/32  scram-sha-256\n"
)


def password_exists(home: Path, file_name: str) -> bool:
    return password(home, file_name, create=False) is not None


def password(home: Path, file_name: str, *, create: bool) -> str | None:
    """The password stored in ``home/file_name``; generated (mode 0600) when missing and ``create``."""
    path = Path(home) / file_name
    try:
        value = path.read_text().strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    if not create:
        return None
    value = secrets.token_urlsafe(24)  # URL-safe: goes into connection URLs as is
    tmp = path.with_name(f".{file_name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    os.replace(tmp, path)
    return value


def remove_passwords(home: Path) -> None:
    for name in (SUPERUSER_PASSWORD_FILE, READER_PASSWORD_FILE):
        (Path(home) / name).unlink(missing_ok=True)


def hba_is_current(data_dir: Path) -> bool:
    try:
        return (data_dir / "pg_hba.conf").read_text() == PG_HBA
    except OSError:
        return False


def write_hba(data_dir: Path) -> None:
    path = data_dir / "pg_hba.conf"
    stat = path.stat()
    path.write_text(PG_HBA)
    os.chown(path, stat.st_uid, stat.st_gid)  # keep the server user as owner (we may be root)


def set_superuser_password(cur, value: str) -> None:
    cur.execute("SET password_encryption = 'scram-sha-256'")
    cur.execute(f"ALTER ROLE {SUPERUSER} PASSWORD %s", (value,))


# The reader role is server-wide; CREATE ROLE has no IF NOT EXISTS, hence the DO block (two commands starting at
# once are serialised by the cluster lock, but a DO block also survives a concurrent creator).
_CREATE_READER = """
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
    CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
  END IF;
END $$;
ALTER ROLE {role} SET default_transaction_read_only = on;
"""

# Inside database ig_analytics: connect and read schema instagram, nothing else (no temp tables, no other
# database). The event trigger re-grants whenever schema instagram is (re)created later, by migrations.
_GRANTS = """
REVOKE ALL ON DATABASE {dagster} FROM PUBLIC;
REVOKE TEMPORARY ON DATABASE {analytics} FROM PUBLIC;
GRANT CONNECT ON DATABASE {analytics} TO {role};
CREATE SCHEMA IF NOT EXISTS ig_analytics_admin;
REVOKE ALL ON SCHEMA ig_analytics_admin FROM PUBLIC;
CREATE OR REPLACE FUNCTION ig_analytics_admin.grant_reader() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT FROM pg_namespace WHERE nspname = 'instagram') THEN
    GRANT USAGE ON SCHEMA instagram TO {role};
    GRANT SELECT ON ALL TABLES IN SCHEMA instagram TO {role};
    ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA instagram GRANT SELECT ON TABLES TO {role};
  END IF;
END $$;
CREATE OR REPLACE FUNCTION ig_analytics_admin.on_create_schema() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT FROM pg_event_trigger_ddl_commands() WHERE object_identity = 'instagram') THEN
    PERFORM ig_analytics_admin.grant_reader();
  END IF;
END $$;
DROP EVENT TRIGGER IF EXISTS ig_analytics_reader_grants;
CREATE EVENT TRIGGER ig_analytics_reader_grants ON ddl_command_end WHEN TAG IN ('CREATE SCHEMA')
  EXECUTE FUNCTION ig_analytics_admin.on_create_schema();
SELECT ig_analytics_admin.grant_reader();
"""


def ensure_reader(server_cur, analytics_cur, reader_password: str, *, password_is_new: bool,
                  analytics_db: str, dagster_db: str) -> None:
    """Create the read-only role (``server_cur``: any database) and its grants (``analytics_cur``) when missing;
    set its password when the role or the password file is new. Cheap when everything is in place."""
    server_cur.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (READER,))
    row = server_cur.fetchone()
    if row is None:
        server_cur.execute(_CREATE_READER.format(role=READER))
        password_is_new = True
    if row is None or row[0] != READER_CONNECTION_LIMIT:  # also a role made by an older version, without a limit
        server_cur.execute(f"ALTER ROLE {READER} CONNECTION LIMIT {READER_CONNECTION_LIMIT}")
    if password_is_new:
        server_cur.execute("SET password_encryption = 'scram-sha-256'")
        server_cur.execute(f"ALTER ROLE {READER} PASSWORD %s", (reader_password,))
    analytics_cur.execute("SELECT 1 FROM pg_event_trigger WHERE evtname = 'ig_analytics_reader_grants'")
    if analytics_cur.fetchone() is None:
        analytics_cur.execute(
            _GRANTS.format(role=READER, owner=SUPERUSER, analytics=_ident(analytics_db), dagster=_ident(dagster_db))
        )


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
