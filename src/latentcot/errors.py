"""The one exception type latentcot raises for bad input (files, records, configs, CLI)."""


class LatentCotError(Exception):
    """A user-facing error: the message names what is wrong and where (file, record, field, key).

    The CLI prints it as one line and exits non-zero; inside the library it is raised only at the
    boundary (reading files, parsing configs), never as defensive code.
    """
