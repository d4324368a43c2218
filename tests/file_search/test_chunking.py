from shared.file_search.chunking import chunk_text


def test_short_text_is_one_chunk():
    assert chunk_text("  A short note.  ", 800, 160) == ["A short note."]


def test_chunks_overlap_cut_at_boundaries_and_cover_everything():
    sentences = [f"Sentence {index} says something about item {index}." for index in range(60)]
    text = " ".join(sentences)
    chunks = chunk_text(text, 300, 80)
    assert len(chunks) > 5 and all(len(chunk) <= 300 for chunk in chunks)
    # Every chunk but the last ends at a sentence end; the next one starts with words the previous ended with.
    assert all(chunk.endswith(".") for chunk in chunks)
    for before, after in zip(chunks, chunks[1:]):
        assert after.split()[0] in before[-90:] and not after[0].isspace()
    # Nothing is lost: every sentence is whole in some chunk.
    assert all(any(sentence in chunk for chunk in chunks) for sentence in sentences)


def test_text_without_boundaries_is_cut_at_the_size():
    chunks = chunk_text("x" * 1000, 300, 50)
    assert [len(chunk) for chunk in chunks][:3] == [300, 300, 300]
    assert "".join(chunk[:250] for chunk in chunks[:-1]).startswith("x" * 750)


def test_paragraph_breaks_win_over_sentence_ends():
    text = "First paragraph. It has two sentences, the second longer.\n\n" + "Second paragraph is long. " * 20
    assert chunk_text(text, 80, 10)[0] == "First paragraph. It has two sentences, the second longer."
