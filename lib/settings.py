"""One typed settings object: backend choice, home folder, Azure ids, limits.

Reads, in order of precedence: environment variables, `.streamlit/secrets.toml`, and an
Azure ML `config.json`. `st.secrets` is never touched (it raises when no secrets file exists);
the TOML file is parsed directly so job and server processes see the same settings.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
# Streamlit's `server.maxUploadSize` in `.streamlit/config.toml` is this same number (a test
# keeps them equal): the uploader's front door and the services' check agree.
DEFAULT_MAX_UPLOAD_MB = 200
DEFAULT_MAX_ROWS = 10_000_000
DEFAULT_MAX_COLUMNS = 30_000
# Decoded size of one table in memory: a 200 MB CSV is about 300 MB typed; a Parquet file can
# decode to 100x its size, so this, not the upload size, is what keeps a bomb out.
DEFAULT_MAX_UNCOMPRESSED_MB = 1024
# A 20 MB CSV takes about a second to read and type here; bigger ones register out of process.
DEFAULT_BACKGROUND_UPLOAD_MB = 20


@dataclass(frozen=True)
class UploadLimits:
    """What one uploaded table may be: file size, rows, columns, decoded size in memory."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * MB
    max_rows: int = DEFAULT_MAX_ROWS
    max_columns: int = DEFAULT_MAX_COLUMNS
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_MB * MB

    @property
    def max_upload_mb(self) -> int:
        return max(1, self.max_upload_bytes // MB)


@dataclass(frozen=True)
class MonitoringSettings:
    """Telemetry retention and drift sampling of local endpoints."""

    raw_days: float = 30.0  # raw request/trace rows, minute roll-ups, 5-minute drift counts
    rollup_days: float = 400.0  # hour and day roll-ups and drift counts
    drift_sampling: bool = True
    drift_rate: float = 1.0  # share of scored requests whose rows are recorded
    drift_cap_per_minute: int = 10_000  # recorded rows per minute per endpoint server


@dataclass(frozen=True)
class SignIn:
    """The `[auth]` section of secrets.toml, as `st.login` reads it (OIDC, e.g. Entra ID)."""

    providers: tuple[str, ...]  # "default" when the provider is configured in [auth] itself
    problems: tuple[str, ...] = ()  # what is missing or wrong; sign-in works only without any

    @property
    def ready(self) -> bool:
        return bool(self.providers) and not self.problems


_OIDC_KEYS = ("client_id", "client_secret", "server_metadata_url")


def sign_in_from_secrets(secrets: dict) -> SignIn | None:
    """What `st.login` would find in secrets.toml; None when there is no `[auth]` section."""
    auth = secrets.get("auth")
    if not isinstance(auth, dict):
        return None
    problems = []
    redirect = str(auth.get("redirect_uri") or "")
    if not redirect:
        problems.append("[auth] redirect_uri is missing")
    elif not redirect.endswith("/oauth2callback"):
        problems.append("[auth] redirect_uri must end with /oauth2callback")
    if len(str(auth.get("cookie_secret") or "")) < 32:
        problems.append("[auth] cookie_secret is missing or shorter than 32 characters")
    providers = []
    if any(auth.get(k) for k in _OIDC_KEYS):
        providers.append("default")
    providers += [name for name, value in auth.items() if isinstance(value, dict)]
    for name in providers:
        section = auth if name == "default" else auth[name]
        missing = [k for k in _OIDC_KEYS if not section.get(k)]
        if missing:
            where = "[auth]" if name == "default" else f"[auth.{name}]"
            problems.append(f"{where} is missing {', '.join(missing)}")
    if not providers:
        problems.append("[auth] names no identity provider (client_id, client_secret, ...)")
    return SignIn(tuple(providers), tuple(problems))


@dataclass(frozen=True)
class AzureConfig:
    subscription_id: str
    resource_group: str
    workspace_name: str
    tenant_id: str | None = None
    log_analytics_workspace_id: str | None = None
    source: str = ""


@dataclass(frozen=True)
class Settings:
    home: Path
    backend: str  # "local" or "azure"
    backend_reason: str
    azure: AzureConfig | None = None
    limits: UploadLimits = field(default_factory=UploadLimits)
    worker_slots: int = field(default_factory=lambda: os.cpu_count() or 1)
    sample_data_path: Path | None = None
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    sign_in: SignIn | None = None
    # Public /swagger.json and /docs of local endpoints show real training values (examples,
    # categories, ranges, class names) only when the operator opts in.
    swagger_training_values: bool = False
    # Uploads this big are registered in a process of their own while the page stays usable.
    background_upload_bytes: int = DEFAULT_BACKGROUND_UPLOAD_MB * MB

    @property
    def max_upload_mb(self) -> int:
        """The upload size limit in MB (1024 * 1024 bytes, as Streamlit counts them)."""
        return self.limits.max_upload_mb


def _read_toml(path: Path) -> dict:
    if not path.is_file():
        return {}
    with path.open("rb") as f:
        return tomllib.load(f)


def _azure_from_env(env: os._Environ[str] | dict[str, str]) -> AzureConfig | None:
    sub = env.get("AZURE_SUBSCRIPTION_ID")
    rg = env.get("AZURE_RESOURCE_GROUP")
    ws = env.get("AZURE_ML_WORKSPACE") or env.get("AZURE_WORKSPACE_NAME")
    if sub and rg and ws:
        return AzureConfig(
            subscription_id=sub,
            resource_group=rg,
            workspace_name=ws,
            tenant_id=env.get("AZURE_TENANT_ID"),
            log_analytics_workspace_id=env.get("AZURE_LOG_ANALYTICS_WORKSPACE_ID"),
            source="AZURE_* environment variables",
        )
    return None


def _azure_from_secrets(secrets: dict) -> AzureConfig | None:
    section = secrets.get("azure")
    if not isinstance(section, dict):
        return None
    missing = [
        k for k in ("subscription_id", "resource_group", "workspace_name") if not section.get(k)
    ]
    if missing:
        raise ValueError(f"[azure] section in secrets.toml is missing: {', '.join(missing)}")
    return AzureConfig(
        subscription_id=section["subscription_id"],
        resource_group=section["resource_group"],
        workspace_name=section["workspace_name"],
        tenant_id=section.get("tenant_id"),
        log_analytics_workspace_id=section.get("log_analytics_workspace_id"),
        source="[azure] section of .streamlit/secrets.toml",
    )


def _azure_from_config_json(path: Path) -> AzureConfig | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    try:
        return AzureConfig(
            subscription_id=data["subscription_id"],
            resource_group=data["resource_group"],
            workspace_name=data["workspace_name"],
            tenant_id=data.get("tenant_id"),
            source=f"Azure ML {path.name}",
        )
    except KeyError as exc:
        raise ValueError(f"{path} is missing {exc.args[0]}") from exc


def find_sample_data(
    env: os._Environ[str] | dict[str, str] | None = None, root: Path | None = None
) -> Path | None:
    """Locate the Bank Marketing CSV shipped beside the repo (never inside it)."""
    env = os.environ if env is None else env
    # An empty or blank variable means "not set": the default lookup still applies.
    explicit = (env.get("OPSDECK_SAMPLE_DATA") or "").strip()
    candidates = [Path(explicit).expanduser()] if explicit else []
    candidates.append((root or REPO_ROOT).parent / "shared" / "data" / "bankmarketing_train.csv")
    return next((p for p in candidates if p.is_file()), None)


def _positive_int(name: str, *values: object) -> int:
    """The first value that is set, as a positive int; a clear error names the setting."""
    value = next(v for v in values if v not in (None, ""))
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if number < 1:
        raise ValueError(f"{name} must be at least 1, got {number}")
    return number


def _limits(env: os._Environ[str] | dict[str, str], opsdeck: dict) -> UploadLimits:
    def pick(env_name: str, key: str, default: int) -> int:
        return _positive_int(env_name, env.get(env_name), opsdeck.get(key), default)

    return UploadLimits(
        max_upload_bytes=pick("OPSDECK_MAX_UPLOAD_MB", "max_upload_mb", DEFAULT_MAX_UPLOAD_MB) * MB,
        max_rows=pick("OPSDECK_MAX_ROWS", "max_rows", DEFAULT_MAX_ROWS),
        max_columns=pick("OPSDECK_MAX_COLUMNS", "max_columns", DEFAULT_MAX_COLUMNS),
        max_uncompressed_bytes=pick(
            "OPSDECK_MAX_UNCOMPRESSED_MB", "max_uncompressed_mb", DEFAULT_MAX_UNCOMPRESSED_MB
        )
        * MB,
    )


def _monitoring(env: os._Environ[str] | dict[str, str], opsdeck: dict) -> MonitoringSettings:
    def pick(env_name: str, key: str, default: object) -> object:
        for value in (env.get(env_name), opsdeck.get(key)):
            if value not in (None, ""):
                return value
        return default

    def days(env_name: str, key: str, default: float) -> float:
        value = pick(env_name, key, default)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{env_name} must be a number of days, got {value!r}") from None
        if not number > 0:
            raise ValueError(f"{env_name} must be more than 0 days, got {value!r}")
        return number

    sampling = str(pick("OPSDECK_DRIFT_SAMPLING", "drift_sampling", "on")).strip().lower()
    if sampling not in ("on", "off", "true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"OPSDECK_DRIFT_SAMPLING must be on or off, got {sampling!r}")
    rate_text = str(pick("OPSDECK_DRIFT_SAMPLE_RATE", "drift_sample_rate", "1")).strip()
    try:
        rate = float(rate_text.rstrip("%")) / (100 if rate_text.endswith("%") else 1)
    except ValueError:
        rate = -1.0
    if not 0 < rate <= 1:
        raise ValueError(
            f"OPSDECK_DRIFT_SAMPLE_RATE must be a share in (0, 1] or a percentage, got {rate_text!r}"
        )
    return MonitoringSettings(
        raw_days=days("OPSDECK_TELEMETRY_RAW_DAYS", "telemetry_raw_days", 30.0),
        rollup_days=days("OPSDECK_TELEMETRY_ROLLUP_DAYS", "telemetry_rollup_days", 400.0),
        drift_sampling=sampling in ("on", "true", "1", "yes"),
        drift_rate=rate,
        drift_cap_per_minute=_positive_int(
            "OPSDECK_DRIFT_CAP_PER_MINUTE",
            env.get("OPSDECK_DRIFT_CAP_PER_MINUTE"),
            opsdeck.get("drift_cap_per_minute"),
            10_000,
        ),
    )


def load_settings(
    env: os._Environ[str] | dict[str, str] | None = None, root: Path | None = None
) -> Settings:
    """Build the settings from the environment, secrets.toml and config.json."""
    env = os.environ if env is None else env
    root = root or REPO_ROOT
    secrets = _read_toml(root / ".streamlit" / "secrets.toml")
    opsdeck = secrets.get("opsdeck", {}) if isinstance(secrets.get("opsdeck"), dict) else {}

    home = Path(env.get("OPSDECK_HOME") or opsdeck.get("home") or root / ".opsdeck")
    if not home.is_absolute():
        home = (root / home).resolve()
    limits = _limits(env, opsdeck)
    slots = int(
        env.get("OPSDECK_WORKER_SLOTS") or opsdeck.get("worker_slots") or (os.cpu_count() or 1)
    )
    forced = (env.get("OPSDECK_BACKEND") or opsdeck.get("backend") or "").lower()

    azure = (
        _azure_from_env(env)
        or _azure_from_secrets(secrets)
        or _azure_from_config_json(root / "config.json")
    )
    if forced == "local":
        backend, reason = "local", "OPSDECK_BACKEND=local"
    elif azure is not None:
        backend, reason = "azure", f"configured by the {azure.source}"
    elif forced == "azure":
        raise ValueError(
            "OPSDECK_BACKEND=azure but no Azure workspace is configured "
            "(set [azure] in .streamlit/secrets.toml, AZURE_* variables, or config.json)"
        )
    else:
        backend = "local"
        reason = "no [azure] section in secrets, no AZURE_* variables, no config.json"
    return Settings(
        home=home,
        backend=backend,
        backend_reason=reason,
        azure=azure,
        limits=limits,
        worker_slots=max(1, slots),
        sample_data_path=find_sample_data(env, root),
        monitoring=_monitoring(env, opsdeck),
        background_upload_bytes=_positive_int(
            "OPSDECK_BACKGROUND_UPLOAD_MB",
            env.get("OPSDECK_BACKGROUND_UPLOAD_MB"),
            opsdeck.get("background_upload_mb"),
            DEFAULT_BACKGROUND_UPLOAD_MB,
        )
        * MB,
        sign_in=sign_in_from_secrets(secrets),
        swagger_training_values=_on_off(
            "OPSDECK_SWAGGER_TRAINING_VALUES",
            env.get("OPSDECK_SWAGGER_TRAINING_VALUES"),
            opsdeck.get("swagger_training_values"),
        ),
    )


def _on_off(name: str, *values: object) -> bool:
    """The first value that is set, as on/off (default off); a clear error names the setting."""
    value = next((v for v in values if v not in (None, "")), False)
    text = str(value).strip().lower()
    if text in ("on", "true", "1", "yes"):
        return True
    if text in ("off", "false", "0", "no"):
        return False
    raise ValueError(f"{name} must be on or off, got {value!r}")


def mask_secret(value: str | None, keep: int = 4) -> str:
    """Show only the last few characters of a secret."""
    if not value:
        return ""
    return "•" * 8 + value[-keep:] if len(value) > keep * 2 else "•" * 8
