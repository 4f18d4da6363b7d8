"""Running whole-stream steps without one process holding every row (Ray, many nodes)."""
