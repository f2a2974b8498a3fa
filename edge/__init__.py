"""edge: a face-recognition appliance for small CPUs."""

import os

# ONNX Runtime's Linux wheels (1.2x on) send usage telemetry to Microsoft (1DS) and keep a device
# id, an event cache and a session file under $HOME and $TMPDIR, unless this is set before
# onnxruntime loads (microsoft/onnxruntime#27379). A device that watches people must not phone
# home, and several modules import onnxruntime, so it is set here, first.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
# OpenCV's decoders then refuse a huge image from its header, before allocating it (a 100
# megapixel photo would otherwise cost 300 MB on a device with 1-4 GB). Must match
# edge.pipeline.images.MAX_PIXELS; read by OpenCV at its first decode.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", "36000000")

__version__ = "0.1.0"
