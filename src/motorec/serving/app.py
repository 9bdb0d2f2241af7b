"""The HTTP API (FastAPI, OpenAPI at /docs and /openapi.json) over a RecommenderService.

Every route is `async def`. Validation, embedding and building the log record run on the event
loop (well under a millisecond for precomputed features); raw text/image encoding (tens of ms of
torch) runs in the thread pool; the durable write is awaited from the group committer's thread.
Worker threads that hold the GIL for long are what make tail latency explode on a busy 2-core
machine, so only torch (which releases the GIL) and the sync (which does too) leave the loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Path, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

import motorec
from motorec.errors import MotorecError
from motorec.serving.content import ItemContent, TooLarge
from motorec.serving.guard import API_KEY_HEADER, RequestGuard
from motorec.serving.metrics import Metrics, MetricsMiddleware
from motorec.serving.service import ID_PATTERN, Conflict, NotFound, RecommenderService
from motorec.serving.wal import WalUnavailable

MAX_BODY = 8 * 1024 * 1024
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_TEXT = 20_000
MAX_K = 1000
MAX_INTERACTIONS = 1000

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
ItemId = Annotated[str, Path(pattern=ID_PATTERN, max_length=128, description="External item id")]
UserId = Annotated[str, Path(pattern=ID_PATTERN, max_length=128, description="External user id")]
FieldValue = (
    Annotated[str, Field(max_length=MAX_TEXT)]
    | FiniteFloat
    | Annotated[list[Annotated[str, Field(max_length=1000)]], Field(max_length=100)]
)
Fields = Annotated[dict[Annotated[str, Field(max_length=64)], FieldValue], Field(max_length=64)]
FIELDS = TypeAdapter(Fields)


class Error(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Error},
    404: {"model": Error},
    409: {"model": Error},
    413: {"model": Error},
    422: {"model": Error},
    503: {"model": Error},
}
STATUS = ((NotFound, 404), (Conflict, 409), (TooLarge, 413), (WalUnavailable, 503))


class ItemIn(BaseModel):
    """A new item: an id plus raw content (text or fields, an image) and/or precomputed features."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=ID_PATTERN, max_length=128)
    title: str | None = Field(None, max_length=1000)
    text: str | None = Field(None, min_length=1, max_length=MAX_TEXT, description="the item text, encoded as is")
    fields: Fields | None = Field(None, description="text fields rendered through the bundle's text template")
    image_base64: str | None = Field(
        None, description=f"base64 of a JPEG, PNG or WebP image of at most {MAX_IMAGE_BYTES} bytes (larger: 413)"
    )
    features: dict[Annotated[str, Field(max_length=64)], list[FiniteFloat]] | None = Field(
        None, max_length=16, description="precomputed features per modality (as in the training features)"
    )


class Token(BaseModel):
    modality: str
    level: int
    code: int
    kind: str


class ItemCreated(BaseModel):
    id: str
    tokens: list[Token] | None
    imputed_modalities: list[str]
    index_version: int
    item_vectors: str


class RecommendedItem(BaseModel):
    id: str
    title: str
    score: float
    new: bool


class Recommendation(BaseModel):
    user_id: str
    items: list[RecommendedItem]
    index_version: int


class InteractionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Annotated[str, Field(pattern=ID_PATTERN, max_length=128)]] = Field(
        min_length=1, max_length=MAX_INTERACTIONS
    )


class InteractionsOut(BaseModel):
    user_id: str
    new_user: bool
    online_interactions: int


class UserOut(BaseModel):
    user_id: str
    new: bool
    train_interactions: int
    online_interactions: int
    online_items: list[str]


def _decode_image(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MotorecError("image_base64 is not valid base64.") from exc


def _parse_fields(text: str) -> dict[str, Any]:
    """The multipart 'fields' form value: a JSON object validated like the JSON body's 'fields'."""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MotorecError(f"'fields' must be a JSON object: {exc}") from exc
    except RecursionError as exc:
        raise MotorecError("'fields' is nested too deeply; give a flat JSON object of field name -> text.") from exc
    try:
        return FIELDS.validate_python(parsed)
    except ValidationError as exc:
        problems = [
            "fields/" + "/".join(map(str, e.get("loc", ()))) + ": " + e.get("msg", "invalid") for e in exc.errors()[:5]
        ]
        raise MotorecError("; ".join(problems)) from None


def create_app(service: RecommenderService, api_key: str | None = None) -> FastAPI:
    """The app; with `api_key`, write requests need it in the X-API-Key header (401 otherwise)."""
    app = FastAPI(
        title="motorec cold-item service",
        version=motorec.__version__,
        description="Recommendations from a motorec bundle; new items are recommendable as soon as "
        "they are posted, new users as soon as they interact."
        + (f" Write requests need the API key in the {API_KEY_HEADER} header." if api_key else ""),
    )
    metrics = Metrics()
    app.add_middleware(RequestGuard, max_body=MAX_BODY, api_key=api_key)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: 401 and 413 are counted too

    @app.exception_handler(MotorecError)
    async def user_error(request: Request, exc: MotorecError) -> JSONResponse:
        code = next((status for cls, status in STATUS if isinstance(exc, cls)), 422)
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        return JSONResponse({"detail": "the JSON body is nested too deeply."}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """One readable line per problem; the offending input is not echoed (it may be NaN or huge)."""
        problems = ["/".join(map(str, e.get("loc", ()))) + ": " + e.get("msg", "invalid") for e in exc.errors()[:5]]
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    @app.get("/recommend/{user_id}", response_model=Recommendation, responses=ERRORS)
    async def recommend(
        user_id: UserId, k: Annotated[int, Query(ge=1, le=MAX_K)] = 20, exclude_seen: bool = True
    ) -> JSONResponse:
        """Top-k items for a user by inner product; `new` marks items ingested online."""
        return JSONResponse(service.recommend(user_id, k, exclude_seen))

    async def ingest(item_id: str, content: ItemContent, title: str | None) -> dict[str, Any]:
        raw = content.text is not None or content.fields is not None or content.image is not None
        if raw:
            record = await run_in_threadpool(service.prepare_item, item_id, content, title)
        else:
            record = service.prepare_item(item_id, content, title)
        version = await asyncio.wrap_future(service.commit(record))
        return service.item_created(record, version)

    @app.post("/items", status_code=201, response_model=ItemCreated, responses=ERRORS)
    async def add_item(item: ItemIn) -> dict[str, Any]:
        """Ingest an item: content -> features -> tokens -> vector -> log -> index. Returns its tokens."""
        image = _decode_image(item.image_base64) if item.image_base64 else None
        if image is not None and len(image) > MAX_IMAGE_BYTES:
            raise TooLarge(f"the image is larger than {MAX_IMAGE_BYTES} bytes.")
        content = ItemContent(features=item.features or {}, text=item.text, fields=item.fields, image=image)
        return await ingest(item.id, content, item.title)

    @app.post("/items/form", status_code=201, response_model=ItemCreated, responses=ERRORS)
    async def add_item_form(
        id: Annotated[str, Form(pattern=ID_PATTERN, max_length=128)],
        title: Annotated[str | None, Form(max_length=1000)] = None,
        text: Annotated[str | None, Form(min_length=1, max_length=MAX_TEXT)] = None,
        fields: Annotated[str | None, Form(max_length=MAX_TEXT, description="JSON object of text fields")] = None,
        image: Annotated[UploadFile | None, File(description="JPEG/PNG/WebP image")] = None,
    ) -> dict[str, Any]:
        """Ingest an item from a multipart form with an image upload (e.g. `curl -F image=@poster.jpg`)."""
        parsed = _parse_fields(fields) if fields is not None else None
        data = None
        if image is not None:
            data = await image.read(MAX_IMAGE_BYTES + 1)
            if len(data) > MAX_IMAGE_BYTES:
                raise TooLarge(f"the image is larger than {MAX_IMAGE_BYTES} bytes.")
        return await ingest(id, ItemContent(text=text, fields=parsed, image=data), title)

    @app.get("/items/{item_id}", responses=ERRORS)
    async def get_item(item_id: ItemId) -> dict[str, Any]:
        """An item's title, text, tokens and whether it was ingested online."""
        return service.item(item_id)

    @app.post("/users/{user_id}/interactions", response_model=InteractionsOut, responses=ERRORS)
    async def add_interactions(user_id: UserId, body: InteractionsIn) -> dict[str, Any]:
        """Record interactions and fold the user's vector in from item vectors (new users are created)."""
        record = service.prepare_interactions(user_id, body.items)
        await asyncio.wrap_future(service.commit(record))
        return service.interactions_added(record)

    @app.get("/users/{user_id}", response_model=UserOut, responses=ERRORS)
    async def get_user(user_id: UserId) -> dict[str, Any]:
        """A user's train and online interaction counts and their most recent online items."""
        return service.user(user_id)

    @app.post("/admin/compact", responses=ERRORS)
    async def compact() -> dict[str, Any]:
        """Compact the write-ahead log now (it is also compacted automatically as it grows)."""
        return await asyncio.wrap_future(service.compact_log())

    @app.get("/tokens/{modality}/{level}/{code}", responses=ERRORS)
    async def token(
        modality: Annotated[str, Path(max_length=64)],
        level: Annotated[int, Path(ge=0, le=64)],
        code: Annotated[int, Path(ge=0, le=2**31)],
    ) -> dict[str, Any]:
        """What a token means: the items carrying it (newest first) and the words most typical of their
        texts against the catalogue (TF-IDF; the same function as `motorec explain --token`)."""
        return service.token(modality, level, code)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return service.health()

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> str:
        """Prometheus text: request counts and latency histograms per route, catalogue gauges."""
        h = service.health()
        gauges = {k: h[k] for k in ("items_indexed", "items_new", "users", "index_version", "wal_records")}
        return metrics.render(gauges)

    return app
