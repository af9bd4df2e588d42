"""The library behind the pipeline's stages and `predict`."""

import os

# TensorFlow's C++ log level, read when TensorFlow loads (which every module importing it does
# after this package's __init__): 3 drops its INFO to ERROR lines: CPU-feature notes, and an
# "E0000 ... NodeDef mentions attribute use_unbounded_threadpool" line that every Keras `fit`
# prints with TensorFlow 2.21 and that is harmless. Real failures still raise Python exceptions.
# Set TF_CPP_MIN_LOG_LEVEL yourself to see them all.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
