"""Process exit codes, in one place.

The supervisor stops the whole service, instead of restarting the child, when a
child exits with one of the codes in FATAL_EXITS: no restart can fix them.
"""

EXIT_OK = 0
EXIT_FAILURE = 1  # An unexpected error.
EXIT_CONFIG = 2  # An invalid configuration value.
EXIT_AUTH = 3  # The datastream or the API rejected the API key.
EXIT_REDIS = 4  # Redis failed the start-up self-test.
EXIT_BOOT = 5  # A child failed while starting up.

FATAL_EXITS = frozenset({EXIT_CONFIG, EXIT_AUTH, EXIT_BOOT})
