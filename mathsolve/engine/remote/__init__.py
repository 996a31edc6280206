"""Engine: the remote backend, an OpenAI-compatible server (server.ServerEngine) as the engine."""
