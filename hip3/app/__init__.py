"""The `hip3 bot` application: configuration, key, simulator, dispatcher, summary."""
