"""The few exceptions babynn raises on purpose; the CLI turns each into one `Error: ...` line."""


class BabynnError(Exception):
    """A problem the user can fix; `exit_code` is what the process exits with."""

    exit_code = 1


class DataError(BabynnError):
    """The CSV cannot be used: missing file, unknown column, non-numeric or missing values..."""


class ModelFileError(BabynnError):
    """A model file is missing, damaged, of an unknown format, or does not fit the data."""


class OutputError(BabynnError):
    """An output file cannot be written (no such folder, permission denied, disk full)."""


class UsageError(BabynnError):
    """Options that cannot go together, or a value out of range that Typer could not check."""

    exit_code = 2


class DivergedError(BabynnError):
    """Training diverged or went unstable: the rate was too large; nothing was saved."""

    exit_code = 3


class NotConvergedError(BabynnError):
    """--require-converged, and the run did not converge; nothing was saved."""

    exit_code = 4
