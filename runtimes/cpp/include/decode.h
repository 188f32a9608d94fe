// Raw output tensors of one image -> final detections, as metadata.json's output_layout says: confidence filter,
// NMS (unless the model applied it), boxes, keypoints and masks back to the original image. No ONNX Runtime:
// ONNXInference::predict and the conformance tests (runtimes/conformance/vectors) both call decode_detections.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "letterbox.h"
#include "metadata.h"
#include "results.h"

namespace exportkit {

// A float32 output tensor: row-major values and the shape they have (batch first, where the layout has one).
struct TensorView {
    const float* data = nullptr;
    std::vector<int64_t> shape;
};

struct DecodeLimits {
    double confidence_threshold = 0.25;
    double iou_threshold = 0.45;
    int max_detections = 300;
    bool agnostic = false;
};

// Thresholds from metadata.json's postprocessing; the optional arguments win where given.
DecodeLimits decode_limits(const ModelMetadata& meta, std::optional<double> confidence = std::nullopt,
                           std::optional<double> iou = std::nullopt);

// The predictions of image 0 seen as (channel, anchor) whatever the axis order; rows of final detections
// ("batch, detections, values") read as anchors-first. Throws MetadataError when the shape disagrees with the layout.
PredictionsView predictions_of(const TensorView& predictions, const ModelMetadata& meta);

// Detections of image 0, best confidence first. `prototypes` is needed for segment models (either axis order).
std::vector<Detection> decode_detections(const ModelMetadata& meta, const TensorView& predictions, const TensorView* prototypes,
                                         const LetterboxGeometry& geometry, const DecodeLimits& limits);

}  // namespace exportkit
