"""The embedded PostgreSQL of a local install: the server (``embedded_db``), its lock, passwords and read-only
role (``auth``), process checks (``procs``) and orphan clean-up (``housekeeping``). Below ``storage``: it
imports only the package's cross-cutting modules."""
