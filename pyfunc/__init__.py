"""The served model: ONNX Runtime + `tokenizers` + label maps. Never imports torch or transformers."""
