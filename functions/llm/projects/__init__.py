"""Projects: named groups of conversations with an instruction that leads every chat request in them."""
