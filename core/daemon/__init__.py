"""The headless daemon: the engine and pipelines with no UI, serving the client API on a socket."""
