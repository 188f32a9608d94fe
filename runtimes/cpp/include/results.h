// What predict() returns: detections in original image pixels, with masks (segment) and keypoints (pose).
#pragma once

#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "postprocess.h"

namespace exportkit {

struct Detection {
    int class_id = 0;
    std::string class_name;
    float confidence = 0.f;
    BoxXYXY box;                     // original image pixels, xyxy, clipped to the image
    cv::Mat mask;                    // segment: CV_8U at the original image size, 255 inside the instance, else 0
    std::vector<Keypoint> keypoints; // pose: metadata's num_keypoints points, original image pixels
};

struct Timing {
    double preprocess_ms = 0, inference_ms = 0, postprocess_ms = 0;
    double total_ms() const { return preprocess_ms + inference_ms + postprocess_ms; }
};

struct Results {
    std::vector<Detection> detections;  // best confidence first
    int image_width = 0;
    int image_height = 0;
    Timing timing;
};

// Results as JSON (what `yolo_infer --json` prints): image size, timing, and per detection class_id, class_name,
// confidence, box [x1, y1, x2, y2], keypoints [[x, y, visibility], ...] and mask {"size": [h, w], "counts": [...]}.
// Masks are run-length encoded row-major, alternating runs of 0 and 1 pixels starting with 0 (see mask_to_rle).
std::string results_to_json(const Results& results, const std::string& task, int indent = -1);

// Row-major run lengths of a binary mask (non-zero = 1), alternating 0-runs and 1-runs, starting with a 0-run
// (which may be 0 long). The counts sum to rows * cols.
std::vector<int> mask_to_rle(const cv::Mat& mask);

}  // namespace exportkit
