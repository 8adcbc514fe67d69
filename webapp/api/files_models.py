"""What the attachment and subscription endpoints take and give (:mod:`webapp.api.files`)."""

from typing import Annotated
from typing import Literal

from pydantic import Field

from webapp.api.schema import Body
from webapp.api.schema import Count
from webapp.api.schema import Ref
from webapp.api.schema import Reply
from webapp.api.schema import TimeOut
from webapp.models_messages import BUILD_WHEN
from webapp.models_messages import CHANNELS
from webapp.models_messages import EVENTS
from webapp.notifications import ADDRESS_PATTERN
from webapp.notifications import MAX_ADDRESSES

Address = Annotated[str, Field(max_length=254, pattern=ADDRESS_PATTERN, strict=True)]


class Attachment(Reply):
    """A file attached to a test case; its content type is sniffed from its bytes."""

    id: Ref
    case_id: Ref
    name: str
    size: Count
    sha256: str
    content_type: str
    created: TimeOut


class AttachmentList(Reply):
    """A case's attachments, oldest first."""

    count: Count
    results: list[Attachment]


class SubscriptionIn(Body):
    """An e-mail subscription (``addresses``) or a webhook (``url`` and ``secret``).

    ``when`` applies to build.finished: always (the default), failing or
    new_failures. A webhook URL whose host resolves to an internal address is
    refused unless GREENBAR_WEBHOOK_ALLOWED_HOSTS lists it; the other channel's
    fields are refused.
    """

    channel: Literal[CHANNELS]
    event: Literal[EVENTS]
    when: Literal[BUILD_WHEN] | None = None
    addresses: Annotated[list[Address], Field(min_length=1, max_length=MAX_ADDRESSES)] | None = None
    url: Annotated[str, Field(max_length=2048, pattern="^https?://", strict=True)] | None = None
    secret: Annotated[str, Field(min_length=8, max_length=255, strict=True)] | None = None


class Subscription(Reply):
    """A subscription as shown: e-mail with its addresses, a webhook with its URL (never its secret)."""

    id: Ref
    instance_id: Ref
    channel: str
    event: str
    when: str | None
    addresses: list[str] | None
    url: str | None
    created: TimeOut


class SubscriptionList(Reply):
    """An instance's subscriptions, oldest first."""

    count: Count
    results: list[Subscription]
