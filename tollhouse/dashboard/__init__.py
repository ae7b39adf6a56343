"""The local dashboard: its own port, a token, pages and the JSON they read."""
