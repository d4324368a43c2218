"""google_search against a Serper-compatible search API: `POST {url}/search`, `X-API-KEY`, Serper's JSON body and
answer (`searchParameters`, `organic[]`). Retries with backoff on transient failures; every failure is a clear
ToolFailure. The result payload is Jan's."""
from __future__ import annotations

import json
import time

import urllib3

from functions.mcp.arguments import ToolFailure
from functions.mcp.catalog import ToolConfig
from shared import outbound
from shared.times import rfc3339, utcnow

SNIPPET_LIMIT = 420  # runes, then "…" (Jan)
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})

SCHEMA = {
    "type": "object",
    "properties": {
        "q": {"type": "string", "description": "Search query string"},
        "gl": {"type": "string", "description": "Optional region code for search results in ISO 3166-1 alpha-2 "
                                                "format (e.g., 'us')"},
        "hl": {"type": "string", "description": "Optional language code for search results in ISO 639-1 format "
                                                "(e.g., 'en')"},
        "location": {"type": "string", "description": "Optional location for search results (e.g., 'SoHo, New "
                                                      "York, United States', 'California, United States')"},
        "num": {"type": "number", "description": "Number of results to return (default: 10)"},
        "tbs": {"type": "string", "description": "Time-based search filter ('qdr:h' for past hour, 'qdr:d' for past "
                                                 "day, 'qdr:w' for past week, 'qdr:m' for past month, 'qdr:y' for "
                                                 "past year)"},
        "page": {"type": "number", "description": "Page number of results to return (default: 1)"},
        "autocorrect": {"type": "boolean", "description": "Whether to autocorrect spelling in query"},
        "domain_allow_list": {"type": "array", "items": {"type": "string"},
                              "description": "Restrict results to the provided domains, e.g., "
                                             "['example.com','wikipedia.org']"},
        "location_hint": {"type": "string", "description": "Soft location hint (region or timezone) applied when "
                                                           "the upstream engine supports it"},
        "offline_mode": {"type": "boolean", "description": "Force cached/offline search mode even when live engines "
                                                          "are available"},
    },
    "required": ["q"],
}
DESCRIPTION = ("Perform web searches via the configured engines (Serper, SearXNG, or cached fallback) and fetch "
               "structured citations.")
TBS_VALUES = frozenset({"qdr:h", "qdr:d", "qdr:w", "qdr:m", "qdr:y"})


def truncate(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "…"


class SerperSearch:
    def __init__(self, url: str, api_key: str, *, timeout: float, attempts: int, domain_filter: tuple[str, ...]):
        self.endpoint = url.rstrip("/") + "/search"
        self.api_key = api_key
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.domain_filter = domain_filter

    def search(self, args: dict, config: ToolConfig | None) -> dict:
        if args.get("offline_mode"):
            raise ToolFailure("search unavailable: offline mode is enabled")
        if args.get("tbs") is not None and args["tbs"] not in TBS_VALUES:
            raise ToolFailure("argument 'tbs' must be one of qdr:h, qdr:d, qdr:w, qdr:m, qdr:y")
        query = args["q"].strip()
        domains = list(dict.fromkeys([*self.domain_filter, *(args.get("domain_allow_list") or [])]))
        if domains:  # Jan restricts by rewriting the query
            query = f"({query}) (" + " OR ".join(f"site:{domain}" for domain in domains) + ")"
        request = {"q": query, "autocorrect": args.get("autocorrect", True)}
        for name in ("gl", "hl", "location", "tbs"):
            if args.get(name):
                request[name] = args[name]
        for name, top in (("num", 100), ("page", 100)):
            if args.get(name) is not None:
                number = int(args[name])
                if not 1 <= number <= top:
                    raise ToolFailure(f"argument {name!r} must be between 1 and {top}")
                request[name] = number
        answer = self._post(request)
        return self._payload(args["q"], answer, config)

    def _post(self, request: dict) -> dict:
        body = json.dumps(request).encode()
        headers = {"X-API-KEY": self.api_key, "Content-Type": "application/json", "Accept": "application/json"}
        delay, failure = 0.25, "search provider unreachable"
        deadline = time.monotonic() + self.timeout
        for attempt in range(self.attempts):
            left = deadline - time.monotonic()
            if left <= 0:
                failure = "search provider timed out"
                break
            try:
                response = outbound.send("POST", self.endpoint, body=body, headers=headers,
                                         connect_timeout=min(5.0, left), read_timeout=left)
            except urllib3.exceptions.NewConnectionError:  # before TimeoutError: urllib3 derives it from that
                failure = "search provider unreachable"
            except urllib3.exceptions.TimeoutError:
                failure = "search provider timed out"
            except urllib3.exceptions.HTTPError:
                failure = "search provider unreachable"
            else:
                if response.status == 200:
                    try:
                        answer = json.loads(response.data)
                    except ValueError:
                        answer = None
                    if not isinstance(answer, dict) or not isinstance(answer.get("organic", []), list):
                        raise ToolFailure("search provider returned an invalid response")
                    return answer
                if response.status not in TRANSIENT_STATUSES:
                    raise ToolFailure(f"search provider rejected the request (HTTP {response.status})")
                failure = f"search provider failed (HTTP {response.status})"
            if attempt + 1 < self.attempts:
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 1.5, 5.0)
        raise ToolFailure(failure)

    @staticmethod
    def _payload(query: str, answer: dict, config: ToolConfig | None) -> dict:
        now = rfc3339(utcnow().replace(microsecond=0))
        metadata = answer.get("searchParameters") if isinstance(answer.get("searchParameters"), dict) else {}
        engine = metadata.get("engine") if isinstance(metadata.get("engine"), str) and metadata["engine"] else "serper"
        results, citations = [], []
        for item in answer.get("organic") or []:
            if not isinstance(item, dict):
                continue
            title = item.get("title") if isinstance(item.get("title"), str) else ""
            link = item.get("link") if isinstance(item.get("link"), str) else ""
            snippet = next((value for value in (item.get("snippet"), item.get("description"))
                            if isinstance(value, str) and value.strip()), "No snippet returned by upstream engine.")
            if config is not None and config.disallows(title, snippet, link):
                continue
            results.append({"position": len(results) + 1, "title": title, "source_url": link,
                            "snippet": truncate(snippet, SNIPPET_LIMIT), "cache_status": "live", "fetched_at": now})
            if link:
                citations.append(link)
        return {"query": query, "engine": engine, "live": True, "cache_status": "live", "metadata": metadata,
                "results": results, "citations": citations}
