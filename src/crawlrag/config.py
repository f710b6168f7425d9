"""All configuration, read once from the environment and `.env`, then passed down.

Nothing else in the package reads environment variables: build a `Settings` (or call `load_settings()`) at the
edge (CLI, server start, test fixture) and hand it to the parts that need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from crawlrag.limits import DEFAULT_RESULT_TOKENS, MAX_RESULT_TOKENS, MIN_RESULT_TOKENS
from crawlrag.pipeline.bounds import CHUNK_SIZE_RANGE, CONCURRENCY_RANGE, DEPTH_RANGE, PAGES_RANGE, REFRESH_HOURS_RANGE

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_RERANKING_MODEL = "cross-encoder/ms-marco-MiniLM-L-6-v2"
# What EMBEDDING_MODEL means with EMBEDDING_PROVIDER=openai when it is left at the local default (as upstream).
DEFAULT_OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
PROJECT_URL = "https://github.com/crawlrag/crawlrag"


def package_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("crawlrag")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def default_user_agent() -> str:
    return f"crawlrag/{package_version()} (+{PROJECT_URL})"


class ConfigError(ValueError):
    """A setting has a value crawlrag cannot use; the message names the variable, the value and what is allowed."""


def default_database_url() -> str:
    data_dir = Path(platformdirs.user_data_dir("crawlrag", appauthor=False))
    return f"sqlite:///{data_dir / 'crawlrag.db'}"


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _http_url(value: str) -> str:
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return value


CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Every setting crawlrag understands; environment variable names are the upper-case field names."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
    )

    # --- server -------------------------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8051, ge=1, le=65535)
    transport: Literal["stdio", "http", "sse"] = "stdio"
    health_port: int | None = Field(None, ge=1, le=65535)
    mcp_auth_token: SecretStr | None = None
    metrics_public: bool = True
    crawl_wait_seconds: float = Field(50.0, ge=0, le=3600)
    max_crawl_jobs: int = Field(2, ge=1, le=32)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"

    # --- storage ------------------------------------------------------------------------------------------------
    database_url: str = Field(default_factory=default_database_url)
    pg_pool_min_size: int = Field(1, ge=0, le=100)
    pg_pool_max_size: int = Field(10, ge=1, le=1000)
    pg_hnsw_ef_search: int = Field(100, ge=1, le=1000)

    # --- crawling -----------------------------------------------------------------------------------------------
    allow_private_network: bool = False
    # Host names (globs allowed) exempt from the private-network check, e.g. docs.internal,*.corp.example.
    # Not an allow-list: other public hosts stay crawlable.
    allowed_hosts: CommaList = Field(default_factory=list)
    browser: Literal["auto", "never", "always"] = "auto"
    chromium_path: str | None = None
    respect_robots_txt: bool = True
    # Empty: "crawlrag/<version> (+PROJECT_URL)", see `default_user_agent`.
    user_agent: str = ""
    max_depth: int = Field(3, ge=DEPTH_RANGE[0], le=DEPTH_RANGE[1])
    max_pages: int = Field(1000, ge=PAGES_RANGE[0], le=PAGES_RANGE[1])
    max_concurrent: int = Field(10, ge=CONCURRENCY_RANGE[0], le=CONCURRENCY_RANGE[1])
    # Fetches to one host at once, whatever MAX_CONCURRENT allows across hosts.
    max_concurrent_per_host: int = Field(4, ge=1, le=100)
    # robots.txt Crawl-delay is honoured up to this many seconds (a larger value would stall a crawl for hours).
    max_crawl_delay_seconds: float = Field(10.0, ge=0, le=600)
    # 429 and 503 answers are retried this many times, waiting Retry-After (capped by MAX_RETRY_AFTER_SECONDS).
    http_retries: int = Field(2, ge=0, le=10)
    max_retry_after_seconds: float = Field(30.0, ge=0, le=600)
    # A page that would make more chunks than this (a huge generated file) is skipped with that reason.
    max_chunks_per_page_indexed: int = Field(2000, ge=1, le=1_000_000)
    request_timeout_seconds: float = Field(30.0, gt=0, le=600)
    crawl_timeout_seconds: float = Field(3600.0, gt=0, le=7 * 24 * 3600)
    max_response_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_redirects: int = Field(10, ge=0, le=50)
    max_sitemap_urls: int = Field(50_000, ge=1)
    max_sitemap_depth: int = Field(3, ge=0, le=10)

    # --- local sources: folders, git repositories, archives, PDFs, OpenAPI specs (crawlrag.local) -----------------
    # Roots under which local files may be read; empty (the default) makes nothing local readable.
    allowed_paths: CommaList = Field(default_factory=list)
    local_max_file_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    archive_max_bytes: int = Field(1024 * 1024 * 1024, ge=1024)  # everything in one archive, uncompressed
    archive_max_files: int = Field(20_000, ge=1)
    archive_max_ratio: float = Field(200.0, ge=1)  # uncompressed / compressed size: zip bombs exceed it by far
    git_timeout_seconds: float = Field(600.0, gt=0, le=24 * 3600)

    # --- chunking and embeddings --------------------------------------------------------------------------------
    chunk_size: int = Field(1000, ge=CHUNK_SIZE_RANGE[0], le=CHUNK_SIZE_RANGE[1])
    max_link_density: float = Field(0.7, gt=0, le=1)
    embedding_provider: Literal["local", "openai"] = "local"
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    # --- OpenAI-compatible embeddings (OpenAI, Ollama, vLLM, LM Studio, TEI's OpenAI route) ---
    openai_base_url: str = DEFAULT_OPENAI_BASE_URL
    embedding_dimensions: int | None = Field(None, ge=1, le=16_000)
    embedding_concurrency: int = Field(4, ge=1, le=64)
    embedding_timeout_seconds: float = Field(60.0, gt=0, le=3600)
    embedding_max_retries: int = Field(5, ge=0, le=20)
    embedding_batch_size: int = Field(64, ge=1, le=4096)
    # Processes embedding document batches beside the server/CLI (embeddings/workers.py); None: 2 on a CPU with
    # two cores or more, 0: in-process only.
    embedding_workers: int | None = Field(None, ge=0, le=64)
    embedding_device: str = "cpu"
    embedding_backend: Literal["auto", "torch", "onnx"] = "torch"
    embedding_precision: Literal["auto", "float32", "bfloat16", "float16", "int8"] = "auto"

    # --- retrieval ----------------------------------------------------------------------------------------------
    use_hybrid_search: bool = True
    use_agentic_rag: bool = False
    use_contextual_embeddings: bool = False
    rrf_k: int = Field(60, ge=1, le=1000)
    rrf_vector_weight: float = Field(1.0, ge=0)
    rrf_keyword_weight: float = Field(1.0, ge=0)
    max_chunks_per_page: int = Field(2, ge=1, le=100)
    code_min_chars: int = Field(300, ge=1)
    max_query_chars: int = Field(2000, ge=1, le=100_000)
    max_match_count: int = Field(50, ge=1, le=1000)
    # Default `max_tokens` of the search tools and fetch_page, in the embedding model's tokens.
    max_result_tokens: int = Field(DEFAULT_RESULT_TOKENS, ge=MIN_RESULT_TOKENS, le=MAX_RESULT_TOKENS)

    # --- reranking ----------------------------------------------------------------------------------------------
    use_reranking: bool = False
    reranking_model_name: str = DEFAULT_RERANKING_MODEL
    reranking_fallback_models: CommaList = Field(default_factory=list)
    reranking_load_retries: int = Field(2, ge=0, le=10)
    reranking_backend: Literal["auto", "torch", "onnx", "openvino"] = "auto"
    reranking_precision: Literal["auto", "float32", "float16", "bfloat16", "int8", "int8-full"] = "auto"
    reranking_max_length: int = Field(512, ge=16, le=8192)
    reranking_batch_size: int = Field(32, ge=1, le=1024)
    reranking_batch_tokens: int | None = Field(None, ge=64, le=1_048_576)
    reranking_candidates: int = Field(30, ge=1, le=1000)
    reranking_warmup_samples: int = Field(5, ge=0, le=1000)
    reranking_health_check_enabled: bool = True
    reranking_wait_seconds: float = Field(10.0, ge=0, le=600)
    gpu_preference: Literal["auto", "cuda", "mps", "cpu"] = "auto"
    use_gpu_acceleration: Literal["auto", "true", "false"] | None = None
    gpu_device_index: int = Field(0, ge=0)
    gpu_precision: Literal["float32", "float16", "bfloat16"] = "float32"
    gpu_memory_fraction: float = Field(0.9, gt=0, le=1)
    reranking_provider: Literal["local", "tei", "cohere"] = "local"
    reranking_url: str | None = None
    reranking_api_key: SecretStr | None = None
    reranking_timeout_seconds: float = Field(10.0, gt=0, le=600)

    # --- LLM: contextual embeddings, code-example and source summaries ------------------------------------------
    llm_provider: Literal["none", "openai"] = "none"
    model_choice: str = ""
    openai_api_key: SecretStr | None = None
    llm_base_url: str | None = None  # defaults to OPENAI_BASE_URL
    llm_api_key: SecretStr | None = None  # defaults to OPENAI_API_KEY
    llm_concurrency: int = Field(4, ge=1, le=64)
    llm_timeout_seconds: float = Field(60.0, gt=0, le=3600)

    # --- scale-out (PostgreSQL): shared crawl-job queue, `crawlrag worker` -------------------------------------
    worker_concurrency: int = Field(1, ge=1, le=32)  # crawl jobs one `crawlrag worker` runs at a time
    # A worker that stops renewing its lease this long (killed, machine lost) has its job resumed by another.
    job_lease_seconds: float = Field(30.0, ge=3, le=3600)
    # Streamable HTTP without sessions: behind a load balancer without sticky sessions, any server answers any
    # request of clients on the session-based protocol versions (newer protocol versions have no sessions anyway).
    http_stateless: bool = False
    # --- scheduled refresh (issue 17, refresh) ----------------------------------------------------------------
    # Hours between refreshes of every source by a running server; unset or 0: off. A source's own interval
    # (`crawlrag crawl --refresh-every`, smart_crawl_url's refresh_interval_hours) takes precedence.
    refresh_interval_hours: float | None = Field(None, ge=REFRESH_HOURS_RANGE[0], le=REFRESH_HOURS_RANGE[1])
    # How often the server looks for sources due for a refresh.
    refresh_check_seconds: float = Field(60.0, gt=0, le=3600)

    @field_validator("refresh_interval_hours", mode="before")
    @classmethod
    def _blank_is_off(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("allowed_hosts", "reranking_fallback_models", "allowed_paths", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, value: list[str]) -> list[str]:
        hosts = [host.strip().lower() for host in value if host.strip()]
        for host in hosts:
            if any(char in host for char in "/@ \t") or host.count(":") == 1:
                raise ValueError(f"{host!r} is not a host name: list names or globs without scheme, port or path")
        return hosts

    @field_validator("allowed_paths")
    @classmethod
    def _absolute_paths(cls, value: list[str]) -> list[str]:
        # Resolved once here (symlinks, "..", "~"), so the roots a path is checked against are real directories.
        roots = []
        for raw in value:
            path = Path(raw).expanduser()
            if not path.is_absolute():
                raise ValueError(f"{raw!r} is not an absolute path: list directories such as /home/me/docs")
            roots.append(str(path.resolve()))
        return roots

    @field_validator("use_gpu_acceleration", mode="before")
    @classmethod
    def _legacy_gpu_flag(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            return value
        raise ValueError("expected sqlite:///PATH or postgresql://USER@HOST/DB")

    @field_validator("llm_base_url", "reranking_url")
    @classmethod
    def _optional_url(cls, value: str | None) -> str | None:
        return None if value is None or not value.strip() else _http_url(value)

    @field_validator("openai_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _http_url(value) if value.strip() else DEFAULT_OPENAI_BASE_URL

    @model_validator(mode="after")
    def _providers(self) -> Settings:
        if not self.user_agent.strip():
            self.user_agent = default_user_agent()
        if self.embedding_provider == "openai" and self.embedding_model == DEFAULT_EMBEDDING_MODEL:
            self.embedding_model = DEFAULT_OPENAI_EMBEDDING_MODEL
        if self.llm_provider == "openai" and not self.model_choice.strip():
            raise ValueError("LLM_PROVIDER=openai needs MODEL_CHOICE, the chat model to call (e.g. gpt-4.1-nano)")
        if self.reranking_provider != "local" and not self.reranking_url:
            raise ValueError(f"RERANKING_PROVIDER={self.reranking_provider} needs RERANKING_URL, the server's base URL")
        return self

    @property
    def llm_url(self) -> str:
        return self.llm_base_url or self.openai_base_url

    @property
    def llm_key(self) -> SecretStr | None:
        return self.llm_api_key or self.openai_api_key

    @model_validator(mode="after")
    def _apply_legacy_gpu_flag(self) -> Settings:
        # USE_GPU_ACCELERATION is the seed project's name; it only applies when GPU_PREFERENCE is left at auto.
        if self.use_gpu_acceleration == "false" and self.gpu_preference == "auto":
            self.gpu_preference = "cpu"
        if self.transport == "sse":
            # Upstream's default transport; SSE is deprecated in MCP, Streamable HTTP replaces it.
            self.transport = "http"
        return self

    @property
    def sqlite_path(self) -> Path | None:
        if self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///")).expanduser()
        return None


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment (and `.env`), raising `ConfigError` with a readable message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def format_validation_error(exc: ValidationError) -> str:
    lines = ["Invalid configuration:"]
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]).upper() or "SETTINGS"
        value = error.get("input")
        shown = "<missing>" if value is None else repr(value)
        if isinstance(value, dict):
            shown = "<object>"
        lines.append(f"  {name}={shown}: {error['msg']}")
    return "\n".join(lines)
