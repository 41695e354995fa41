"""Domain errors of indexing; messages name the thing and what to do next."""


class IndexingError(Exception):
    """Base class: an expected failure with a message meant for the user."""

    code = "indexing_error"


class EmbeddingFailed(IndexingError):
    """The embedding backend could not produce vectors."""

    code = "embedding_failed"


class EmbeddingModelMismatch(IndexingError):
    """A project holds vectors of another model than the configured one."""

    code = "embedding_model_mismatch"


class RepositoryPathInvalid(IndexingError):
    """The path to index is missing, not a directory, or not allowed."""

    code = "invalid_repository_path"


class UnknownRepository(IndexingError):
    """No indexed repository of the project has that id, path or name."""

    code = "unknown_repository"


class IndexingInProgress(IndexingError):
    """Another run indexes the same project and repository right now."""

    code = "indexing_in_progress"


class WatchRefused(IndexingError):
    """Nothing is left to watch: bad paths, or another watcher has them all."""

    code = "watch_refused"


class IndexJobNotFound(IndexingError):
    code = "job_not_found"

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"No indexing job with id {job_id!r}; start one with index_repository "
            "or start_indexing_background."
        )
