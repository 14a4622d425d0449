"""The migration domain: triggers, the rules of SPEC section 2, records and the block engine.

Nothing in this package knows about HTTP, SQLite or aiohttp; the store, the
admin API and the engine depend on it, never the reverse.
"""
