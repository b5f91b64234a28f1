"""Errors a user can act on; the CLI prints them as one `ERROR: ...` line."""


class TicketMLError(Exception):
    """Base class for expected, user-facing failures."""


class DataError(TicketMLError):
    """Input data is missing, malformed or too small."""


class ConfigError(TicketMLError):
    """Configuration or overrides are invalid."""


class ModelError(TicketMLError):
    """A model, encoder or artifact cannot be found or loaded."""
