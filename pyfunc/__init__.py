"""The served model: ONNX Runtime + `tokenizers` + label maps. Never imports torch or transformers."""

TASKS = ("topic", "priority")  # the tasks, in this order everywhere (label maps, heads, outputs)
