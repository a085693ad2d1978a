"""The S3 credentials of a command: where they came from, and their one-line errors.

Owns the expected credential failures of ``url``, ``check``, ``uploads`` and
``mount``, each a :class:`~s3regfs.errors.UserError` with the exit code
:data:`~s3regfs.exitcodes.CREDENTIALS` that says where credentials are looked
for: no credentials anywhere (:func:`require`, no request needed: botocore
resolves the chain when the client is built), half a key pair
(:func:`pair_error`), and credentials S3 refuses (:func:`refused_error`:
InvalidAccessKeyId, SignatureDoesNotMatch, an expired or invalid token, and
AccessDenied at the first request).  :func:`describe` is the source ``check``
prints (botocore's ``credentials.method``, never a key).  :func:`probe` is the
first request of a mount.  Drivers without credentials (inmemory) pass through.
No secret ever reaches a message: only parameter names, sources and S3's codes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from s3regfs import exitcodes, logs
from s3regfs.driver import DriverWrapper, PathNotFoundError, StorageDriver
from s3regfs.errors import UserError

if TYPE_CHECKING:
    from s3regfs.config.model import DriverConfig

REFUSED_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"}
)
"""S3 error codes that mean "these credentials are not valid", whatever the request."""
FIRST_REQUEST_CODES = REFUSED_CODES | {"AccessDenied"}
"""At the first request (listing the root) AccessDenied means the credentials too."""
_CHAIN_ERRORS = ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError")


def searched(driver_name: str = "s3") -> str:
    """Where credentials are looked for, in the order they are used."""
    name = driver_name if driver_name in ("s3", "s3aws") else "s3"
    return (
        f"the config file (storage.{name}.accesskey/secretkey), "
        f"REGISTRY_STORAGE_{name.upper()}_ACCESSKEY/SECRETKEY, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
        "an AWS profile (AWS_PROFILE, ~/.aws/credentials) or the instance role"
    )


def _source_of(driver: StorageDriver) -> tuple[str, str] | None | bool:
    """The innermost driver's credential source; False for a driver without credentials."""
    inner = driver.unwrap() if isinstance(driver, DriverWrapper) else driver
    source = getattr(inner, "credential_source", None)
    return source() if callable(source) else False


def require(driver_config: DriverConfig, driver: StorageDriver) -> None:
    """Raise the one-line credentials error when an s3 driver found no credentials at all."""
    if _source_of(driver) is None:
        raise UserError(
            f"no S3 credentials found; set them in {searched(driver_config.name)}", exitcodes.CREDENTIALS
        )


def describe(driver_config: DriverConfig, driver: StorageDriver) -> str | None:
    """Where ``driver``'s credentials come from (None for a driver without credentials); never a key."""
    source = _source_of(driver)
    if not source:
        return None if source is False else "none found"
    method, text = source
    if method == "explicit":
        where = [driver_config.source_of(key) for key in ("accesskey", "secretkey")]
        shown = list(dict.fromkeys(w for w in where if w))
        return text + (f" ({', '.join(shown)})" if shown else "")
    return text


def pair_error(driver_config: DriverConfig, given: str, missing: str, source: str | None) -> UserError:
    """Half a key pair: which half is set, where, and which is missing."""
    name = driver_config.name if driver_config.name in ("s3", "s3aws") else "s3"
    where = source or driver_config.source_of(given) or given
    if missing in ("accesskey", "secretkey"):
        fix = (
            f"set {missing} too (storage.{name}.{missing} in the config file or "
            f"REGISTRY_STORAGE_{name.upper()}_{missing.upper()}), "
            f"or remove {given} to use the AWS credential chain"
        )
    else:
        fix = f"set {missing} too, or remove {given}"
    return UserError(f"{given} is set ({where}) but {missing} is not; {fix}", exitcodes.CREDENTIALS)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (a DriverError's ``detail``, ``__cause__``, ``__context__``)."""
    found: list[BaseException] = []
    todo = [exc]
    while todo:
        cause = todo.pop(0)
        if any(cause is seen for seen in found):
            continue
        found.append(cause)
        detail = getattr(cause, "detail", None)
        todo += [c for c in (detail, cause.__cause__, cause.__context__) if isinstance(c, BaseException)]
    return found


def _refusal(exc: BaseException, first_request: bool) -> tuple[str, str] | None:
    """(S3 code or botocore error name, S3's message) when ``exc`` is a credentials failure."""
    codes = FIRST_REQUEST_CODES if first_request else REFUSED_CODES
    for cause in _causes(exc):
        if type(cause).__name__ in _CHAIN_ERRORS:
            return type(cause).__name__, str(cause)
        response: Any = getattr(cause, "response", None)
        if isinstance(response, dict):
            error = response.get("Error", {})
            if str(error.get("Code", "")) in codes:
                return str(error["Code"]), str(error.get("Message", "") or "")
    return None


def refused_error(
    driver_config: DriverConfig, driver: StorageDriver, exc: BaseException, *, first_request: bool = False
) -> UserError | None:
    """The one-line error when ``exc`` says the credentials are missing or refused; None otherwise."""
    refusal = _refusal(exc, first_request)
    if refusal is None:
        return None
    code, message = refusal
    if code in _CHAIN_ERRORS:
        return UserError(
            f"no usable S3 credentials ({code}: {logs.redact(message)}); set them in "
            f"{searched(driver_config.name)}",
            exitcodes.CREDENTIALS,
        )
    detail = f"{code}: {logs.redact(' '.join(message.split()))}" if message else code
    source = describe(driver_config, driver) or "the AWS credential chain"
    hint = " and that they may list the bucket (s3:ListBucket)" if code == "AccessDenied" else ""
    return UserError(
        f"S3 refused the credentials from {source} ({detail}); check them{hint} (credentials are looked "
        f"for in {searched(driver_config.name)})",
        exitcodes.CREDENTIALS,
    )


def probe(driver_config: DriverConfig, driver: StorageDriver) -> None:
    """The first request (a listing of the root): credentials refused or storage unreachable, in one line."""
    try:
        driver.list("/")
    except PathNotFoundError:
        return
    except Exception as exc:  # noqa: BLE001 - any failure here means the storage is not usable
        error = refused_error(driver_config, driver, exc, first_request=True)
        if error is not None:
            raise error from None
        raise UserError(
            logs.redact(
                f"the storage does not answer ({' '.join(str(exc).split())}); check the endpoint, the bucket "
                "and the credentials (s3regfs check shows each step)"
            ),
            exitcodes.STORAGE,
        ) from None
