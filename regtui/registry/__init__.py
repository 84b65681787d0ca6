"""The read-only registry: a Quart app (`app.create_app`) on Hypercorn (`server.serve`), and its event stream."""
