"""The one error a push raises: what failed, where, and what to do — printed as one line.

It is the registry client's error (`regtui.remote.RemoteError`): a push fails in one way, whether the archive,
the plan or the registry said no.
"""

from __future__ import annotations

from regtui.remote.errors import RemoteError

PushError = RemoteError
