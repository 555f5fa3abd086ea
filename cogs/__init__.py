"""Discord cogs: one module per user-facing area, each ending in `async def setup(bot)`."""
