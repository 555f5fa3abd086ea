"""Persistence: the interface units of work use (ports.py) and the SQLite store (sqlite/)."""
