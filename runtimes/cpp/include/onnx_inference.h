// exportkit C++ runtime: run an exported YOLO ONNX model (detect, segment, pose) with ONNX Runtime.
//
//   ONNXInference model("model.onnx", "metadata.json");
//   cv::Mat image = cv::imread("image.jpg");            // BGR
//   auto results = model.predict(image, 0.25, 0.45);    // thresholds default to metadata.json's
//   for (const auto& det : results.detections) std::cout << det.class_name << ": " << det.confidence << "\n";
//
// Every pre- and postprocessing choice (input size, letterbox, colour order, normalisation, class names, output
// layout, default thresholds) is read from the metadata.json that exportkit writes beside the model.
#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "metadata.h"
#include "results.h"

namespace exportkit {

// The model cannot be loaded or run (missing file, ONNX Runtime error, outputs of an unexpected shape or type).
class InferenceError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct SessionConfig {
    int intra_op_threads = 0;  // 0: ONNX Runtime's default (one per physical core)
};

// Load once, predict many times. predict() reuses one input buffer: use one instance per thread.
class ONNXInference {
public:
    // Throws MetadataError for a bad metadata.json or one that does not describe this model (input or output names),
    // InferenceError when ONNX Runtime cannot load the model.
    ONNXInference(const std::string& model_path, const std::string& metadata_path, const SessionConfig& config = {});
    ~ONNXInference();
    ONNXInference(ONNXInference&&) noexcept;
    ONNXInference& operator=(ONNXInference&&) noexcept;

    // Detect in a BGR uint8 image (as cv::imread returns it). Thresholds left out use metadata.json's defaults.
    Results predict(const cv::Mat& image, std::optional<double> confidence_threshold = std::nullopt,
                    std::optional<double> iou_threshold = std::nullopt);

    const ModelMetadata& metadata() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace exportkit

#ifndef EXPORTKIT_NO_GLOBAL_NAMES
// The guide's spelling: `ONNXInference model(...)` without the namespace.
using exportkit::ONNXInference;
#endif
