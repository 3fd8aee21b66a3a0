"""The HTTP edge: a thin Litestar translation of HTTP requests into calls of one `Lake`."""
