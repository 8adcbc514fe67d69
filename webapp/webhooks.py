"""Webhooks: signed JSON POSTs to subscribers, safe against server-side request forgery.

**Signature** (GitHub's scheme): ``X-Greenbar-Signature: sha256=<hex HMAC-SHA256
of the raw body under the subscription's secret>``, with ``X-Greenbar-Event``
naming the event and ``X-Greenbar-Delivery`` a UUID kept across retries and
redeliveries, so a receiver can drop repeats.

**SSRF.** A target whose host resolves to a loopback, private, link-local
(the cloud metadata service included), multicast, reserved or unspecified
address is refused, unless ``WEBHOOK_ALLOWED_HOSTS`` lists the host. The check
runs when a subscription is saved and again at every delivery, and the
connection goes to the very address that was checked (the Host header and
TLS server name stay the URL's), so DNS rebinding between check and connect
does not slip past it. Redirects are not followed.

**Delivery** is an outbox job (``webhook``): a 10 s timeout; a non-2xx answer
or a network error is retried with exponential backoff, up to 8 attempts over
about a day (:mod:`webapp.outbox`). Every attempt is logged in
:class:`~webapp.models_messages.WebhookDelivery`.
"""

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
from urllib.parse import urlsplit

from flask import current_app

from webapp import outbox
from webapp.extensions import db
from webapp.models_messages import Subscription
from webapp.models_messages import WebhookDelivery

TIMEOUT = 10
USER_AGENT = "Greenbar-Hookshot"
ERROR_LIMIT = 500


class RefusedTarget(ValueError):
    """A webhook URL Greenbar will not call (bad scheme, unresolvable, or an internal address)."""


def sign(secret, body):
    """The ``X-Greenbar-Signature`` value of ``body`` (bytes) under ``secret``: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret, body, signature):
    """Whether ``signature`` is the right one for ``body``, compared in constant time (for receivers)."""
    return hmac.compare_digest(sign(secret, body), signature or "")


def internal(address):
    """Whether an IP address is one a webhook must not reach without being allowed."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def resolve(url, allowed_hosts):
    """Check a webhook URL and return ``(parts, address)``: the address to connect to.

    :raise RefusedTarget: for a scheme other than http(s), a host that does not
        resolve, or one that resolves to an internal address and is not allowed.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedTarget("the URL must be http:// or https:// with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as error:
        raise RefusedTarget(f"the host {parts.hostname!r} cannot be resolved ({error})") from None
    addresses = [info[4][0] for info in infos]
    if parts.hostname not in allowed_hosts:
        # every address must be public: otherwise a later resolution could pick the internal one
        blocked = [address for address in addresses if internal(address)]
        if blocked:
            raise RefusedTarget(
                f"the host {parts.hostname!r} resolves to an internal address ({blocked[0]}); "
                "list it in GREENBAR_WEBHOOK_ALLOWED_HOSTS to allow it"
            )
    return parts, addresses[0], port


def check_target(url):
    """Refuse a webhook URL now, as delivery would (used when a subscription is saved)."""
    resolve(url, current_app.config["WEBHOOK_ALLOWED_HOSTS"])


class PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to an already-checked address, whatever the host name resolves to now."""

    def __init__(self, host, address, **kwargs):
        super().__init__(host, **kwargs)
        self.address = address

    def connect(self):
        """Connect to the checked address instead of resolving the host again."""
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to an already-checked address; the certificate is checked for the host name."""

    def __init__(self, host, address, **kwargs):
        super().__init__(host, context=ssl.create_default_context(), **kwargs)
        self.address = address

    def connect(self):
        """Connect to the checked address, then start TLS for the URL's host name."""
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url, body, headers, allowed_hosts):
    """POST ``body`` to a checked URL; return the response status. Network errors raise OSError."""
    parts, address, port = resolve(url, allowed_hosts)
    connection_class = PinnedHTTPSConnection if parts.scheme == "https" else PinnedHTTPConnection
    connection = connection_class(parts.hostname, address, port=port, timeout=TIMEOUT)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(64 * 1024)
        return response.status
    finally:
        connection.close()


def headers_for(subscription, event, delivery_id, body):
    """The headers of a delivery: event, delivery id, signature (when there is a secret)."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Greenbar-Event": event,
        "X-Greenbar-Delivery": delivery_id,
    }
    if subscription.secret:
        headers["X-Greenbar-Signature"] = sign(subscription.secret, body)
    return headers


@outbox.job("webhook")
def deliver(claimed):
    """Deliver one webhook (run by ``flask worker``); a failure is logged and retried."""
    subscription = db.session.get(Subscription, claimed.payload["subscription_id"])
    if subscription is None:
        return  # unsubscribed since: nothing to deliver
    event = claimed.payload["event"]
    body = claimed.payload["body"].encode()
    log = WebhookDelivery(
        subscription_id=subscription.id,
        outbox_id=claimed.id,
        delivery_id=claimed.delivery_id,
        event=event,
        attempt=claimed.attempts,
    )
    # the attempt's transaction must not hold locks while the receiver takes its time
    db.session.commit()
    started = time.monotonic()
    try:
        code = post(
            subscription.target,
            body,
            headers_for(subscription, event, claimed.delivery_id, body),
            current_app.config["WEBHOOK_ALLOWED_HOSTS"],
        )
        error = None if 200 <= code < 300 else f"the receiver answered {code}"
    except (OSError, http.client.HTTPException, RefusedTarget) as problem:
        code, error = None, f"{type(problem).__name__}: {problem}"[:ERROR_LIMIT]
    log.duration_ms = round((time.monotonic() - started) * 1000, 1)
    log.response_code = code
    log.status = "delivered" if error is None else "failed"
    log.error = error
    db.session.add(log)
    if error is not None:
        raise outbox.Retry(error)


def enqueue(subscription, event, payload):
    """Queue a webhook delivery of ``payload`` (a JSON text) in the caller's transaction."""
    return outbox.enqueue("webhook", {"subscription_id": subscription.id, "event": event, "body": payload})
