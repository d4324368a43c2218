"""Text into overlapping chunks: windows of about `size` characters, cut at a paragraph, line, sentence or word
boundary in the window's second half when there is one, each starting `overlap` characters before the previous
one ended (moved forward to a word start), so a passage cut at a boundary is whole in one of the two chunks."""
from __future__ import annotations

_BOUNDARIES = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ")


def _cut(text: str, start: int, end: int) -> int:
    floor = start + (end - start) // 2
    for boundary in _BOUNDARIES:
        found = text.rfind(boundary, floor, end)
        if found != -1:
            return found + len(boundary)
    return end


def _word_start(text: str, position: int, limit: int) -> int:
    """The first word start at or after `position` (not past `limit`)."""
    if position == 0 or text[position - 1].isspace():
        return position
    space = next((index for index in range(position, limit) if text[index].isspace()), -1)
    return limit if space == -1 else space + 1


def chunk_text(text: str, size: int, overlap: int) -> list[str]:
    if size <= 0:
        raise ValueError("chunk size must be positive")
    overlap = max(0, min(overlap, size // 2))
    chunks: list[str] = []
    start, length = 0, len(text)
    while start < length:
        end = length if length - start <= size else _cut(text, start, start + size)
        piece = text[start:end].strip()
        if piece:
            chunks.append(piece)
        if end >= length:
            break
        start = max(_word_start(text, end - overlap, end), start + 1)
    return chunks
