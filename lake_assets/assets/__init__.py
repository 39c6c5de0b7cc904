"""Assets, a module per layer: raw -> lake -> warehouse -> marts."""
