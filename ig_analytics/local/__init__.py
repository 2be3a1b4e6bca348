"""Processes of a local install: the embedded PostgreSQL (server, lock, passwords and read-only role, process
checks, orphan clean-up) and the webserver, daemon and code server of ``ig-analytics ui``."""
