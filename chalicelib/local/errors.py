"""The local stack's own errors: ``except LocalStackError`` catches every one it defines."""


class LocalStackError(Exception):
    """Base of the errors the local stack (``chalicelib.local``) defines."""
