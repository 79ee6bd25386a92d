"""Model files the engines load: the embedded defaults prepared from packaged GGUF weights."""
