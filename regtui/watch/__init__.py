"""Watching a registry that runs elsewhere: event sources (an SSE URL, stdin, a log file) feeding the TUI's bus.

No UI and no server framework here: `regtui watch` (CLI) builds a source, `RegtuiApp(source=...)` starts it.
"""
