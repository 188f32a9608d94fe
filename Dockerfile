# The image `exportkit k8s-job --image IMAGE` runs: exportkit installed from its wheel, plus the extras the matrix's
# formats need. NOT BUILT OR RUN HERE (no container engine on the machines this project is tested on); its steps are
# the ones tests/test_installed.py runs (`pip wheel` of the checkout, then installing that wheel), and the pod's
# command (python -m exportkit.build.k8s_entry) is run by tests/test_k8s.py's local simulation of every index.
#
#   docker build -t registry.example/exportkit:0.1 .                                  # CPU formats
#   docker build --build-arg EXTRAS=onnx,tensorrt --build-arg BASE=nvcr.io/nvidia/pytorch:25.10-py3 -t ...:gpu .
#
# TensorRT cells run in the Job's gpu profile (nvidia.com/gpu: 1): build that image on a CUDA base with the
# `tensorrt` extra (pip then needs tensorrt-cu13 from PyPI, see exportkit/formats/tensorrt.py). CoreML converts on
# Linux (the `coreml` extra); predicting with it needs macOS, so its validation does not run in a pod.
ARG BASE=python:3.11-slim

FROM ${BASE} AS wheel
WORKDIR /src
COPY . .
RUN python -m pip install --no-cache-dir "setuptools>=68" \
 && python -m pip wheel --no-deps --no-build-isolation -w /wheels .

FROM ${BASE}
# onnx, openvino, tflite, coreml, tensorrt, report: pyproject.toml's [project.optional-dependencies]
ARG EXTRAS=onnx,openvino,report
# OpenCV (through ultralytics) needs these shared libraries on a slim base
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=wheel /wheels /wheels
RUN python -m pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
        "$(ls /wheels/exportkit-*.whl)[${EXTRAS}]" \
 && rm -rf /wheels
# the pods are offline: never download fonts, weights or packages at run time (the Job sets these too)
ENV YOLO_OFFLINE=1 YOLO_AUTOINSTALL=False PYTHONUNBUFFERED=1
WORKDIR /exportkit/scratch
CMD ["python", "-m", "exportkit.build.k8s_entry"]
