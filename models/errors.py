"""The one exception type for inputs a user can fix.

Every layer raises :class:`BadInput` for a bad file, shape, name or setting; the command line turns
it into one line on stderr and exit code 2. It lives in the lowest layer so that models/,
inference/ and analysis/ can raise it without importing the command line.
"""


class BadInput(ValueError):
    """A problem with the user's input (file, data, option, run directory), stated in one line."""
