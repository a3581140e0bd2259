"""One request to a source, politely: conditional, paced, timed out, retried with backoff.

A source we poll is someone else's service, often a small open-data portal: we ask at most
once per ``min_interval_seconds``, send ``If-None-Match`` / ``If-Modified-Since`` when we have
validators, honour ``Retry-After``, back off with jitter on 429 and 5xx, and give up after
``max_attempts`` with an error that says what the source answered (FetchFailed, whose body the
collector dead-letters). A body larger than the source's ``max_body_megabytes`` is not read further.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from collectors.collector_file import SourceSpec
from collectors.retry_policy import RETRYABLE_STATUSES, retry_delay
from collectors.source_pages import Request

KEPT_BODY_BYTES = 8 * 1024 * 1024  # what a dead letter keeps of a body: its base64 still fits
# in a record of zc.deadletter (schemas/catalogue.py)
USER_AGENT = "zerocarbon-collect/0.1 (+https://github.com/zerocarbon-larochelle; territorial data platform)"


@dataclass(frozen=True)
class Answer:
    status: int  # 200..299, or 304 (not modified: nothing new)
    body: bytes
    url: str
    etag: str | None
    last_modified: str | None


class FetchFailed(Exception):
    """The source did not give an answer we can use; ``kind`` names why (http_503, unreachable...)."""

    def __init__(self, kind: str, message: str, url: str, body: bytes = b"") -> None:
        super().__init__(message)
        self.kind, self.message, self.url, self.body = kind, message, url, body


@dataclass
class FetchTally:
    requests: int = 0
    retries: int = 0
    not_modified: int = 0
    waited_s: float = 0.0  # asked by Retry-After or backoff


Sleep = Callable[[float], Awaitable[bool]]
"""Waits up to the given seconds; True when the collector is stopping (give up, don't ask)."""


class PoliteFetcher:
    """The requests of one source, one at a time."""

    def __init__(
        self, session: aiohttp.ClientSession, spec: SourceSpec, sleep: Sleep, rng: random.Random
    ) -> None:
        self.session, self.spec, self.sleep, self.rng = session, spec, sleep, rng
        self.tally = FetchTally()
        self._last_request = -float("inf")

    async def fetch(self, request: Request, validators: dict[str, str] | None) -> Answer:
        """The answer to ``request`` (304 when the validators still hold); FetchFailed otherwise."""
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
        if validators:
            if "etag" in validators:
                headers["If-None-Match"] = validators["etag"]
            if "last_modified" in validators:
                headers["If-Modified-Since"] = validators["last_modified"]
        attempt = 0
        while True:
            attempt += 1
            await self._pace()
            failure, retry_after = await self._once(request, headers)
            if isinstance(failure, Answer):
                return failure
            retryable = failure.kind == "unreachable" or failure.kind.removeprefix("http_") in {
                str(s) for s in RETRYABLE_STATUSES
            }
            if not retryable or attempt >= self.spec.max_attempts:
                if retryable:
                    failure.message += f" (gave up after {attempt} attempts)"
                raise failure
            delay = retry_delay(attempt, retry_after, time.time(), self.rng)
            self.tally.retries += 1
            self.tally.waited_s += delay
            if await self.sleep(delay):
                raise FetchFailed(
                    "stopped", "the collector stopped while waiting to retry", failure.url, failure.body
                )

    async def _pace(self) -> None:
        wait = self._last_request + self.spec.min_interval_s - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_request = time.monotonic()

    async def _once(
        self, request: Request, headers: dict[str, str]
    ) -> tuple[Answer | FetchFailed, str | None]:
        self.tally.requests += 1
        timeout = aiohttp.ClientTimeout(total=self.spec.timeout_s)
        try:
            async with self.session.get(
                request.url, params=request.params, headers=headers, timeout=timeout
            ) as answer:
                url = str(answer.url)
                body = await _read_at_most(answer.content, self.spec.max_body_bytes + 1)
                status = answer.status
                if status == 304:
                    self.tally.not_modified += 1
                if len(body) > self.spec.max_body_bytes:
                    return FetchFailed(
                        "too_large",
                        f"the answer exceeds max_body_megabytes ({self.spec.max_body_bytes} bytes); "
                        f"its first {KEPT_BODY_BYTES} bytes are kept",
                        url,
                        body[:KEPT_BODY_BYTES],
                    ), None
                if 200 <= status < 300 or status == 304:
                    return Answer(
                        status, body, url, answer.headers.get("ETag"), answer.headers.get("Last-Modified")
                    ), None
                reason = f"HTTP {status} {answer.reason or ''}".strip()
                return FetchFailed(f"http_{status}", f"{reason} from {url}", url, body), answer.headers.get(
                    "Retry-After"
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            return FetchFailed("unreachable", f"{request.url}: {what}", request.url), None


async def _read_at_most(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """The body up to ``limit`` bytes (a read returns what has arrived, not all of it)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
