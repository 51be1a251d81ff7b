"""The Schematic URLs of the configuration: checks and the datastream URL derivation."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit, urlunsplit


def _split_url(text: str, kind: str) -> SplitResult:
    """Split a URL and check its host and port; ``kind`` names the accepted schemes."""
    expected = f"expected {kind} URL with a host and an optional port from 1 to 65535"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(expected) from None
    if not parts.hostname or port == 0:
        raise ValueError(expected)
    return parts


def parse_api_url(text: str) -> str:
    parts = _split_url(text, "an http:// or https://")
    if parts.scheme not in ("http", "https"):
        raise ValueError("expected an http:// or https:// URL such as https://api.schematichq.com")
    if "?" in text or "#" in text:
        raise ValueError(
            "expected a URL without a query string or fragment, because the REST paths are "
            "appended to it; remove the part from '?' or '#' on"
        )
    return text.rstrip("/")


def derive_datastream_url(api_url: str) -> str:
    """Turn an http(s) API URL into its datastream WebSocket URL.

    ``https`` becomes ``wss`` and ``http`` becomes ``ws``; a first host label of exactly
    ``api`` (in a host with more than one label) becomes ``datastream``; the path is
    replaced by ``/datastream`` and the query is dropped. Raises ValueError for any other
    scheme.
    """
    parts = urlsplit(api_url)
    schemes = {"https": "wss", "http": "ws"}
    if parts.scheme not in schemes or not parts.netloc:
        raise ValueError(f"expected an http:// or https:// URL, got {api_url!r}")

    userinfo, at, hostport = parts.netloc.rpartition("@")
    labels = hostport.split(".")
    if len(labels) > 1 and labels[0] == "api":
        labels[0] = "datastream"
    netloc = userinfo + at + ".".join(labels)
    return urlunsplit((schemes[parts.scheme], netloc, "/datastream", "", ""))


def parse_datastream_url(text: str) -> str:
    kind = "a ws://, wss://, http:// or https://"
    parts = _split_url(text, kind)
    if parts.scheme in ("ws", "wss"):
        if "#" in text:
            raise ValueError(
                "expected a WebSocket URL without a fragment, which RFC 6455 does not "
                "allow; remove the part from '#' on"
            )
        return text
    if parts.scheme in ("http", "https"):
        return derive_datastream_url(text)
    raise ValueError(f"expected {kind} URL")
