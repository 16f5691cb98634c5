"""Settings from environment variables (prefix ``ALLOCATOR_``), with sensible defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from allocator.scenario.workbook import ReadLimits

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
_READ = ReadLimits()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALLOCATOR_", env_file=None, extra="ignore")

    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, ge=1, le=65535)
    database_url: str = Field(
        "sqlite:///allocator.db",
        description="SQLAlchemy URL; SQLite file by default, e.g. postgresql+psycopg://u:p@h/db.",
    )
    api_key: str | None = Field(
        None,
        description="If set, every /v1 call needs a key (X-API-Key); this one is an admin key. "
        "Keys per person: allocator-api keys add (docs/service-access.md).",
    )
    key_cache_s: float = Field(
        5.0,
        ge=0,
        le=300,
        description="How long a verified key is trusted without asking the database: a key "
        "revoked by another process (the CLI, another service) stops working within this "
        "time; one revoked through this service's REST route at once.",
    )
    oidc_issuer: str | None = Field(
        None, description="Accept OpenID Connect bearer tokens from this issuer (iss claim)."
    )
    oidc_jwks_file: Path | None = Field(
        None, description="The issuer's signing keys (a JWKS JSON file), read at start."
    )
    oidc_audience: str | None = Field(None, description="Required aud claim, if set.")
    oidc_role_claim: str = Field(
        "allocator_role", description="Claim holding the role (a string or a list of them)."
    )
    oidc_name_claim: str = Field(
        "preferred_username", description="Claim naming the caller (else sub) in the audit."
    )
    oidc_roles: dict[str, str] = Field(
        default_factory=dict,
        description='Claim values mapped to roles, e.g. {"fleet-admins": "admin"}; the '
        "values viewer, planner and admin are roles as they are.",
    )
    cors_origins: list[str] = Field(default_factory=list, description="Allowed CORS origins.")
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Request body limit.")
    sync_max_columns: int = Field(
        50_000, ge=1, description="Largest LP (columns) POST /v1/solve takes; beyond: 413."
    )
    sync_time_limit_s: float = Field(30.0, gt=0, description="Time limit of a synchronous solve.")
    sync_workers: int = Field(1, ge=1, description="Processes for synchronous solves.")
    whatif_sessions: int = Field(
        4,
        ge=0,
        description="Planner sessions (model and basis) kept per synchronous worker for "
        "what-if requests, one per stored scenario revision; 0 solves every what-if cold.",
    )
    job_workers: int = Field(1, ge=1, description="Plan jobs solved at once.")
    job_time_limit_s: float = Field(600.0, gt=0, description="Default time limit of a job.")
    job_time_limit_max_s: float = Field(3600.0, gt=0, description="Largest time limit allowed.")
    max_pending_jobs: int = Field(32, ge=1, description="Queued + running jobs before 503.")
    job_stale_after_s: float = Field(
        30.0,
        gt=0,
        description="A running job without heartbeat this long (its service died) is queued "
        "again, once; interrupted twice it is marked failed. Found within a few seconds more.",
    )
    validation_time_limit_s: float = Field(
        60.0,
        gt=0,
        description="Longest a scenario body (JSON from 256 KiB, any workbook) may take to "
        "read and validate; past it its validator process is replaced and the answer is 413.",
    )
    workbook_validators: int = Field(
        2, ge=1, description="Processes validating workbooks (JSON bodies have their own)."
    )
    validator_memory_mb: int = Field(
        2048,
        ge=0,
        description="Address space a validator process may add to what it starts with "
        "(RLIMIT_AS, Linux); beyond it the body is a 413. 0: no cap.",
    )
    # the workbook reader's limits (allocator.scenario.workbook.ReadLimits: its defaults)
    workbook_max_rows: int = Field(_READ.rows, ge=1, description="Rows of a workbook sheet.")
    workbook_max_columns: int = Field(
        _READ.columns, ge=1, description="Columns of a workbook sheet."
    )
    workbook_max_cells: int = Field(
        _READ.cells,
        ge=1,
        description="Cells of the sheets a workbook is read from, each sheet counted as its "
        "rows times its widest row.",
    )
    workbook_max_unzipped_mb: int = Field(
        _READ.unzipped_bytes // MIB,
        ge=1,
        description="A workbook's parts, uncompressed (a zip bomb stops here).",
    )
    storage_reserve_bytes: int = Field(
        8 * 1024 * 1024,
        ge=0,
        description="SQLite: a file this large kept beside the database (<file>-reserve) and "
        "given up when a delete finds the disk full, so that DELETE works there; 0: none.",
    )
    ready_write_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="/readyz is ready while a write this large fits (a typical scenario "
        "body): on SQLite the disk and the page limit have the room; after a write failed "
        "for want of space, a probe write of this size must succeed.",
    )
    page_size_max: int = Field(100, ge=1, le=1000)
    load_examples: bool = Field(
        True, description="Store data/*.json at start if the store is empty."
    )
    examples_dir: Path = ROOT / "data"


@lru_cache
def get_settings() -> Settings:
    return Settings()
