"""Pull collectors: sources published on HTTP APIs, polled and sent to the raw topics."""
