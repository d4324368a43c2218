"""scrape: fetch a page through the shared SSRF guard and return its readable text (Jan's payload).

Direct HTTP is the last link of Jan's provider chain and the only one here. HTML becomes visible text (scripts,
styles and other invisible elements dropped); with includeMarkdown, headings, list items and links keep their
Markdown form."""
from __future__ import annotations

import html.parser
import re

from functions.mcp.arguments import ToolFailure
from shared import outbound
from shared.times import rfc3339, utcnow

TEXT_LIMIT = 50000  # characters (Jan's cap)
PREVIEW_LIMIT = 600
TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/markdown", "application/json",
              "application/xml", "text/xml")

SCHEMA = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "description": "The URL of webpage to scrape"},
        "includeMarkdown": {"type": "boolean", "description": "Whether to include markdown content"},
        "offline_mode": {"type": "boolean", "description": "Refuse live fetching (the call fails with a clear "
                                                          "error)"},
    },
    "required": ["url"],
}
DESCRIPTION = "Scrape a webpage and retrieve the text with optional markdown formatting."

_INVISIBLE = frozenset({"script", "style", "noscript", "template", "svg", "head", "iframe", "object"})
_BLOCK = frozenset({"p", "div", "section", "article", "header", "footer", "main", "nav", "aside", "br", "tr", "table",
                    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "form", "hr", "dd",
                    "dt", "figure", "figcaption"})


class _TextExtractor(html.parser.HTMLParser):
    def __init__(self, markdown: bool):
        super().__init__(convert_charrefs=True)
        self.markdown = markdown
        self.parts: list[str] = []
        self.hidden = 0
        self.title: list[str] = []
        self.in_title = False
        self.link: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        if tag in _INVISIBLE:
            self.hidden += 1
            return
        if tag in _BLOCK:
            self.parts.append("\n")
        if self.markdown and not self.hidden:
            if len(tag) == 2 and tag[0] == "h" and tag[1].isdigit():
                self.parts.append("#" * int(tag[1]) + " ")
            elif tag == "li":
                self.parts.append("- ")
            elif tag == "a":
                href = dict(attrs).get("href")
                if href and href.startswith(("http://", "https://")):
                    self.link = href
                    self.parts.append("[")

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        if tag in _INVISIBLE:
            self.hidden = max(0, self.hidden - 1)
            return
        if self.markdown and tag == "a" and self.link:
            self.parts.append(f"]({self.link})")
            self.link = None
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if self.in_title:
            self.title.append(data)
        if not self.hidden:
            self.parts.append(data)


def _tidy(text: str) -> str:
    lines = (re.sub(r"[ \t\f\v\r]+", " ", line).strip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def page_text(body: str, content_type: str, markdown: bool) -> tuple[str, str]:
    """(text, title) of a fetched document."""
    if "html" not in content_type:
        return _tidy(body), ""
    extractor = _TextExtractor(markdown)
    extractor.feed(body)
    extractor.close()
    return _tidy("".join(extractor.parts)), _tidy("".join(extractor.title))


class Scraper:
    def __init__(self, *, timeout: float, max_bytes: int, max_redirects: int, allowed_hosts: tuple[str, ...]):
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.allowed_hosts = allowed_hosts

    def scrape(self, args: dict) -> dict:
        if args.get("offline_mode"):
            raise ToolFailure("scrape unavailable: offline mode is enabled")
        url = args["url"].strip()
        try:
            page = outbound.fetch_public_url(
                url, max_bytes=self.max_bytes, timeout=self.timeout, max_redirects=self.max_redirects,
                allowed_hosts=self.allowed_hosts, accept="text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5")
        except outbound.BlockedDestination as exc:
            raise ToolFailure(f"scrape refused: {exc}") from None
        except outbound.FetchFailed as exc:
            raise ToolFailure(f"scrape failed: {exc}") from None
        if page.status >= 400:
            raise ToolFailure(f"scrape failed: the page answered HTTP {page.status}")
        media_type = page.content_type.split(";", 1)[0].strip().lower()
        if media_type and not (media_type.startswith("text/") or media_type in TEXT_TYPES):
            raise ToolFailure(f"scrape failed: unsupported content type {media_type}")
        charset = re.search(r"charset=([\w.-]+)", page.content_type, re.I)
        try:
            body = page.body.decode(charset.group(1) if charset else "utf-8", errors="replace")
        except LookupError:
            body = page.body.decode("utf-8", errors="replace")
        text, title = page_text(body, media_type or "text/html", bool(args.get("includeMarkdown")))
        truncated = page.truncated or len(text) > TEXT_LIMIT
        text = text[:TEXT_LIMIT]
        metadata = {"title": title, "content_type": media_type, "status_code": page.status, "final_url": page.url,
                    "fallback_mode": True, "truncated": truncated}
        return {"source_url": url, "text": text, "text_preview": _preview(text), "metadata": metadata,
                "cache_status": "fallback", "fetched_at": rfc3339(utcnow().replace(microsecond=0))}


def _preview(text: str) -> str:
    text = text.strip()
    return text if len(text) <= PREVIEW_LIMIT else text[:PREVIEW_LIMIT] + "…"
