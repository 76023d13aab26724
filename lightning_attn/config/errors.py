"""The one error bad configuration raises."""


class ConfigError(ValueError):
    """A config that cannot be used; the message is one line meant for the user."""
