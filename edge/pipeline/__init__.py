"""The recognition stages, one module each: capture, detect, align, quality, embed."""
