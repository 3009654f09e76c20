"""pydantic models for every format the tool reads or writes.

* ``*V1`` models describe the data **as found** in tsuku's history: they accept every real
  line, anomalies included (legacy categories, dashed ``updated_at``, package ids outside
  the published pattern), but reject wrong types and any value step 0001 could not carry
  into v2 (a platform, package id or blocker name v2 refuses), so ``check`` at v1 and
  ``up`` agree.
* ``*V2`` models are the strict target of the migration. A v2 failure line is the v1 line
  made strict and complete, never moved (design.md, "Compatibility"): the same shape and
  keys, with a canonical category, ``blocked_by`` always stated and provenance for every
  backfilled name. Key order on disk is the line's own (:mod:`migrate.records`), not the
  order of the fields here.

The JSON Schemas in ``schemas/`` are generated from these classes (``migrate schemas``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

# --------------------------------------------------------------------------- vocabularies

CANONICAL_CATEGORIES = (
    "recipe_not_found",
    "network_error",
    "install_failed",
    "verify_failed",
    "missing_dep",
    "generation_failed",
)
Category = Literal[CANONICAL_CATEGORIES]  # a tuple subscript spells out every value

#: The upstream dashboard's own remap of legacy category names (formats.md section 3).
LEGACY_CATEGORIES: dict[str, str] = {
    "api_error": "network_error",
    "validation_failed": "install_failed",
    "deterministic_insufficient": "generation_failed",
    "deterministic": "generation_failed",
    "timeout": "network_error",
    "network": "network_error",
}

#: Every category name in the real history: v1 as found accepts these and nothing else,
#: so `check` refuses at v1 exactly what step 0001 could not map.
CategoryV1 = Literal[CANONICAL_CATEGORIES + tuple(LEGACY_CATEGORIES)]
LegacyCategory = Literal[tuple(LEGACY_CATEGORIES)]

Scope = Literal["package", "platform"]
LegacyStatus = Literal["pending", "in_progress", "success", "failed", "blocked", "skipped"]
#: ``generated`` was written by mistake for a day upstream; v1 accepts it, v2 does not.
UnifiedStatusV1 = Literal[
    "pending", "success", "failed", "blocked", "requires_manual", "excluded", "generated"
]
UnifiedStatus = Literal["pending", "success", "failed", "blocked", "requires_manual", "excluded"]
EvidenceSource = Literal[
    "record", "message", "install_json", "validation_results", "log", "sibling_record"
]

_TS = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$"
_TS_ANY = r"^\d{4}-\d{2}-\d{2}T\d{2}[:-]\d{2}[:-]\d{2}(\.\d{1,9})?Z$"
_RUN = r"^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z$"

NonEmpty = Annotated[str, StringConstraints(min_length=1)]
Timestamp = Annotated[str, StringConstraints(pattern=_TS)]
AnyTimestamp = Annotated[str, StringConstraints(pattern=_TS_ANY)]
RunId = Annotated[str, StringConstraints(pattern=_RUN)]
Ecosystem = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.\-]*$")]
Platform = Annotated[str, StringConstraints(pattern=r"^(linux|darwin)(-[a-z0-9_]+)+$")]
PackageId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.\-]*:\S+$")]
#: A recipe name as tsuku writes it (``procs``, ``openssl@3``): no blank, no path.
RecipeName = Annotated[str, StringConstraints(pattern=r"^[^/\\<>\s]+$")]


def _check_blocker(name: str) -> str:
    if ".." in name:
        raise ValueError("a blocker name may not contain '..'")
    return name


#: Upstream rejects dependency names containing ``/``, ``\``, ``..``, ``<`` or ``>``; a
#: name never holds a blank (the registry error ends a name at one).
BlockerName = Annotated[
    str, StringConstraints(pattern=r"^[^/\\<>\s]+$"), AfterValidator(_check_blocker)
]
_BLOCKER_NAME: TypeAdapter[str] = TypeAdapter(BlockerName)


def valid_blocker_name(name: str) -> bool:
    """The one blocker-name rule (:data:`BlockerName`), for readers of evidence."""
    try:
        _BLOCKER_NAME.validate_python(name)
    except ValidationError:
        return False
    return True


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", defer_build=True)


# ------------------------------------------------------------------------- failure lines
#
# Keys tsuku's own Go structs define (formats.md section 7) are declared on the shapes they
# belong to and valid at v1 and v2. Any other key is carried through untouched: the models
# allow it (``model_extra``) and ``check`` notes it, so a new upstream field never turns CI
# red. A line's key order is its writer's, at every version (see :mod:`migrate.records`).


class _Open(BaseModel):
    """Strict types, unknown keys allowed (and reported as notes by ``check``)."""

    model_config = ConfigDict(strict=True, extra="allow", defer_build=True)


def _ecosystem_prefix(ecosystem: str, package_ids: list[str]) -> None:
    for pid in package_ids:
        if not pid.startswith(ecosystem + ":"):
            raise ValueError(f"package_id {pid!r} is not of the envelope's ecosystem {ecosystem!r}")


#: Keys only v2 writes. On a v1 line they are no newer writer's field but a malformed line
#: (step 0001 would overwrite them), refused at v1 as ``up`` refuses them.
V2_ONLY_KEYS = ("category_legacy", "reclassified_from", "evidence")


def _no_v2_keys(data: Any) -> Any:
    if isinstance(data, dict):
        for key in V2_ONLY_KEYS:
            if key in data:
                raise ValueError(f"{key!r} is a schema_version 2 key, on a version 1 line")
    return data


class _OpenV1(_Open):
    @model_validator(mode="before")
    @classmethod
    def _v1_keys(cls, data: Any) -> Any:
        return _no_v2_keys(data)


class FailureItemV1(_OpenV1):
    """One record inside a Shape A envelope, as the Go orchestrator writes it."""

    package_id: PackageId
    category: CategoryV1
    subcategory: str | None = None
    blocked_by: list[BlockerName] | None = None
    message: str
    timestamp: AnyTimestamp
    workflow_url: str | None = None


class EnvelopeV1(_OpenV1):
    """Shape A: the Go orchestrator's batch envelope (one line, 1-44 records)."""

    schema_version: Literal[1]
    ecosystem: Ecosystem
    environment: Platform
    updated_at: AnyTimestamp
    failures: list[FailureItemV1]

    @model_validator(mode="after")
    def _prefix(self) -> EnvelopeV1:
        _ecosystem_prefix(self.ecosystem, [i.package_id for i in self.failures])
        return self


class RecipeLineV1(_OpenV1):
    """Shape B: the CI workflow's per-recipe, per-platform line (written with jq)."""

    schema_version: Literal[1]
    recipe: RecipeName
    ecosystem: Ecosystem | None = None
    platform: Platform
    exit_code: int
    category: CategoryV1
    subcategory: str | None = None
    blocked_by: list[BlockerName] | None = None
    message: str | None = None
    timestamp: AnyTimestamp
    workflow_url: str | None = None


class Evidence(_Strict):
    """Where blocker names (or the statement that none was missing) came from."""

    source: EvidenceSource
    names: list[BlockerName]
    detail: str
    file: str | None = None
    line: int | None = None


class _RecordV2(_Open):
    """What v2 adds to a record (an envelope item or a per-recipe line): a canonical
    category, ``blocked_by`` always stated, and the provenance of backfilled names."""

    category: Category
    category_legacy: LegacyCategory | None = None
    reclassified_from: Category | None = None
    blocked_by: list[BlockerName] | None
    evidence: Annotated[list[Evidence], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> _RecordV2:
        before = self.reclassified_from or self.category
        if self.category_legacy is not None and LEGACY_CATEGORIES[self.category_legacy] != before:
            raise ValueError(
                f"category_legacy {self.category_legacy!r} is not a legacy name of {before!r}"
            )
        if self.reclassified_from is not None and self.category != "missing_dep":
            raise ValueError("only a record reclassified to missing_dep has reclassified_from")
        if self.evidence is not None:
            if self.blocked_by is None:
                raise ValueError("evidence without blocked_by: evidence says what it names")
            named = {n for ev in self.evidence for n in ev.names}
            if named != set(self.blocked_by):
                raise ValueError(
                    "every name in blocked_by needs its evidence, and only those"
                    f" (blocked_by {', '.join(sorted(self.blocked_by))}, evidence names"
                    f" {', '.join(sorted(named))})"
                )
        return self


class FailureItemV2(_RecordV2):
    """One record inside a v2 envelope: the v1 item with the v2 additions."""

    package_id: PackageId
    subcategory: str | None = None
    message: str
    timestamp: AnyTimestamp
    workflow_url: str | None = None


class EnvelopeV2(_Open):
    """A v2 envelope: the same line as at v1, ``schema_version`` 2, its items at v2."""

    schema_version: Literal[2]
    ecosystem: Ecosystem
    environment: Platform
    updated_at: AnyTimestamp
    failures: list[FailureItemV2]

    @model_validator(mode="after")
    def _prefix(self) -> EnvelopeV2:
        _ecosystem_prefix(self.ecosystem, [i.package_id for i in self.failures])
        return self


class RecipeLineV2(_RecordV2):
    """A v2 per-recipe line: the v1 line with the v2 additions and its ``ecosystem``
    stated (null where it cannot be proven: never guessed)."""

    schema_version: Literal[2]
    recipe: RecipeName
    ecosystem: Ecosystem | None
    platform: Platform
    exit_code: int
    subcategory: str | None = None
    message: str | None = None
    timestamp: AnyTimestamp
    workflow_url: str | None = None


#: The model of each line shape at each version.
LINE_MODELS: dict[tuple[str, int], type[BaseModel]] = {
    ("envelope", 1): EnvelopeV1,
    ("recipe", 1): RecipeLineV1,
    ("envelope", 2): EnvelopeV2,
    ("recipe", 2): RecipeLineV2,
}


# ---------------------------------------------------------------------------- queues, v1


class LegacyPackageV1(_Strict):
    id: NonEmpty
    source: NonEmpty
    name: NonEmpty
    tier: int
    status: LegacyStatus
    added_at: str


class LegacyQueueV1(_Strict):
    """``data/priority-queue.json`` and ``data/queues/priority-queue-<eco>.json``."""

    schema_version: Literal[1]
    updated_at: str
    tiers: dict[str, str] | None = None
    packages: list[LegacyPackageV1]


#: What tsuku's dashboard accepts of a unified entry (formats.md section 7: one entry it
#: refuses aborts the whole dashboard), so that ``check`` names it first.
Confidence = Literal["auto", "curated"]
Priority = Annotated[int, Field(ge=1, le=3)]


class UnifiedEntryV1(_Strict):
    name: NonEmpty
    source: NonEmpty
    priority: Priority
    status: UnifiedStatusV1
    confidence: Confidence
    disambiguated_at: str | None
    failure_count: int
    next_retry_at: str | None


class UnifiedQueueV1(_Strict):
    """``data/queues/priority-queue.json`` (says schema_version 1, matches no published schema)."""

    schema_version: Literal[1]
    updated_at: str
    entries: list[UnifiedEntryV1]


class BatchResults(BaseModel):
    """``data/queues/batch-results.json``: recognized, never rewritten, not validated strictly."""

    model_config = ConfigDict(extra="allow", defer_build=True)
    batch_id: str
    timestamp: str


# ---------------------------------------------------------------------------- queues, v2


def _blocked_by_only_when_blocked(entry: BaseModel, status: str) -> None:
    """migrate 0.3 wrote ``blocked_by`` into blocked entries (migrate takes them out now:
    the queue's writer drops every key outside its struct); never on another status."""
    if status != "blocked" and "blocked_by" in entry.model_fields_set:
        raise ValueError("only blocked entries carry blocked_by")


class LegacyPackageV2(_Strict):
    id: PackageId
    source: Ecosystem
    name: NonEmpty
    tier: int
    status: LegacyStatus
    added_at: Timestamp
    blocked_by: list[BlockerName] | None = None

    @model_validator(mode="after")
    def _blocked(self) -> LegacyPackageV2:
        _blocked_by_only_when_blocked(self, self.status)
        return self


class LegacyQueueV2(_Strict):
    schema_version: Literal[2]
    updated_at: Timestamp
    tiers: dict[str, str] | None = None
    packages: list[LegacyPackageV2]


class UnifiedEntryV2(_Strict):
    name: NonEmpty
    source: PackageId
    priority: Priority
    status: UnifiedStatus
    confidence: Confidence
    disambiguated_at: AnyTimestamp | None
    failure_count: Annotated[int, Field(ge=0)]
    next_retry_at: AnyTimestamp | None
    blocked_by: list[BlockerName] | None = None

    @model_validator(mode="after")
    def _blocked(self) -> UnifiedEntryV2:
        _blocked_by_only_when_blocked(self, self.status)
        return self


class UnifiedQueueV2(_Strict):
    schema_version: Literal[2]
    updated_at: Timestamp
    entries: list[UnifiedEntryV2]
