"""The request path: one module per stage, the shared vocabulary at the bottom.

models → routing → prepare → dispatch (upstream) → relay → record, driven by
pipeline; see ARCHITECTURE.md for the walk and where to add things.
"""
