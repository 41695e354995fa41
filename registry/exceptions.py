"""Domain errors of the project registry; messages say what to do next."""


class RegistryError(Exception):
    """Base class: an expected failure with a message meant for the user."""

    code = "registry_error"


class ProjectNotFound(RegistryError):
    code = "project_not_found"

    def __init__(self, reference: str) -> None:
        super().__init__(
            f"No project named or with id {reference!r}. List projects with "
            "`manage.py listprojects` (or the list_projects tool) and create one with "
            f"`manage.py createproject {reference}` (or the create_project tool)."
        )
        self.reference = reference


class ProjectsNotFound(ProjectNotFound):
    """Names of a project list that name no project the caller may read."""

    def __init__(self, references: list[str]) -> None:
        shown = ", ".join(repr(r[:80]) for r in references[:5])
        more = f" and {len(references) - 5} more" if len(references) > 5 else ""
        RegistryError.__init__(
            self,
            f"No project you can read is named or has the id {shown}{more}. List "
            "the projects you can read with `manage.py listprojects` (or the "
            "list_projects tool) and name only those.",
        )
        self.reference = references[0]
        self.references = references


class InvalidProjectList(RegistryError):
    """A list of projects that is empty, too long or not a list of names."""

    code = "invalid_project_list"


class ProjectAlreadyExists(RegistryError):
    code = "project_exists"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"A project named {name!r} already exists; pick another name or use it."
        )
        self.name = name


class ProjectDatabaseExists(RegistryError):
    code = "database_exists"

    def __init__(self, database_name: str) -> None:
        super().__init__(
            f"The database {database_name!r} already exists on the server but no "
            "project owns it; drop it or choose another project name."
        )
        self.database_name = database_name


class InvalidProjectName(RegistryError):
    code = "invalid_project_name"


class InvalidProjectField(RegistryError):
    """A description or metadata PostgreSQL cannot store."""

    code = "invalid_project_field"


class ProjectDatabaseUnavailable(RegistryError):
    code = "database_unavailable"


class ProvisioningFailed(RegistryError):
    code = "provisioning_failed"


class UnknownDatabaseServer(RegistryError):
    code = "unknown_server"

    def __init__(self, server: str, known: list[str]) -> None:
        super().__init__(
            f"No database server named {server!r}; the configured servers are "
            f"{', '.join(known)}. Add `{server}=postgres://...` to "
            "PROJECT_DATABASE_SERVERS (and restart) to use it."
        )
        self.server = server


class ProjectOperationRefused(RegistryError):
    """A move, backup or restore that would be unsafe or wrong was not started."""

    code = "operation_refused"


class BackupInvalid(RegistryError):
    """A file given to restore is not a readable project backup."""

    code = "backup_invalid"


class ProjectOperationFailed(RegistryError):
    """A move, backup or restore failed on the server side and was rolled back."""

    code = "operation_failed"


class AccessDenied(RegistryError):
    """The caller's token does not cover what the call touches (HTTP 403).

    The message is the same for a project the token does not list and for
    one that does not exist, so a token cannot be used to probe names.
    """

    code = "scope_missing"

    def __init__(self, *, permission: str, target: str, holder: str) -> None:
        super().__init__(
            f"The {holder} lacks the `{permission}` scope on {target}; use a token "
            f"with `{permission}` on it (`manage.py apitoken create --permission "
            f"{permission} ...`)."
        )
        self.permission = permission
        self.target = target


class InvalidApiToken(RegistryError):
    """Creating, finding or revoking an API token failed on bad input."""

    code = "invalid_token_request"
