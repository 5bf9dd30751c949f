"""An exception module that only the server imports.

A client with ``rebuild_exceptions=True`` must not import it to rebuild the exception:
rebuilding never imports a module.
"""


class RemoteOnlyError(Exception):
    pass
