"""Domain errors of search; messages say what to change."""

# Which repository a filter names is the indexing layer's to say.
from indexing.exceptions import UnknownRepository  # noqa: F401


class SearchError(Exception):
    """Base class: an expected failure with a message meant for the user."""

    code = "search_error"


class InvalidSearchQuery(SearchError):
    code = "invalid_query"


class UnknownFile(SearchError):
    code = "unknown_file"


class UnknownLanguage(SearchError):
    code = "unknown_language"


class ProjectSchemaOutdated(SearchError):
    """The project database predates what this search needs; migrating fixes it."""

    code = "schema_outdated"


class SearchTimedOut(SearchError):
    """A search reached its statement timeout; a narrower one will answer."""

    code = "timeout"


class RankerArtifactInvalid(SearchError):
    """The ranking layer's weights file is missing, altered or of another version."""

    code = "ranker_invalid"
