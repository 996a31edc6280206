"""Engine: the local backend, llama.cpp in this process (engine.Engine), and the parts it is made of."""
