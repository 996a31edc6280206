"""Model flow: Hugging Face Hub -> our converter -> llama.cpp's quantiser -> the local cache."""
