"""Engine: decode samples on llama.cpp (local) or an OpenAI-compatible server."""
