"""Secrets out of what is shown: URL credentials and signing parameters, before a URL reaches a
log line, a metadata value, an error or an alert.

No Dagster import. A source URL may carry `user:password@` or a signed query (`?sig=…`,
`X-Amz-Signature=…`); the rest of the URL stays, so a reader still sees which file it was.
"""

from __future__ import annotations

import re
import urllib.parse

REDACTED = "<redacted>"
# Query parameters that carry a secret: Azure SAS (sig), S3 and GCS signed URLs (X-Amz-*,
# X-Goog-*), API keys and tokens.
_SECRET_PARAM = re.compile(
    r"^(sig|signature|token|access_token|api_?key|key|password|secret|x-amz-.*|x-goog-.*)$",
    re.IGNORECASE,
)
# A URL runs to the next blank or quote; punctuation that ends the sentence stays outside it.
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,;:)]", re.IGNORECASE)


def redact_url(url: str) -> str:
    """url without its userinfo's secrets and the values of its signing parameters."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        query = "&".join(
            f"{urllib.parse.quote(k, safe='')}="
            + (REDACTED if _SECRET_PARAM.match(k) else urllib.parse.quote(v, safe="{}/:"))
            for k, v in pairs
        )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_urls(text: str) -> str:
    """text with every URL in it redacted (redact_url)."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)
