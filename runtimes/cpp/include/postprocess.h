// Postprocessing of raw YOLO outputs ([batch, channels, anchors]): candidate decoding, class-aware NMS, and the
// mapping of boxes, keypoints and masks back to the original image (Ultralytics' non_max_suppression,
// scale_boxes, scale_coords and process_mask_native).
#pragma once

#include <vector>

#include <opencv2/core.hpp>

#include "letterbox.h"
#include "metadata.h"

namespace exportkit {

struct BoxXYXY {
    float x1 = 0.f, y1 = 0.f, x2 = 0.f, y2 = 0.f;
    float width() const { return x2 - x1; }
    float height() const { return y2 - y1; }
    float area() const { return (x2 - x1) * (y2 - y1); }
};

// Intersection over union of two xyxy boxes (0 when both are empty).
float box_iou(const BoxXYXY& a, const BoxXYXY& b);

// One anchor whose best class score passed the confidence threshold; box in model-input pixels.
struct Candidate {
    BoxXYXY box;
    float score = 0.f;
    int class_id = 0;
    int anchor = 0;  // column in the predictions output, to read mask coefficients or keypoints
};

// A view of one image's predictions: channel c of anchor a at data[c * anchors + a] (anchors last, the default)
// or at data[a * channels + c] (anchors_last false: a [batch, anchors, channels] output).
struct PredictionsView {
    const float* data = nullptr;
    int channels = 0;
    int anchors = 0;
    bool anchors_last = true;
    float at(int channel, int anchor) const {
        return anchors_last ? data[static_cast<size_t>(channel) * anchors + anchor] : data[static_cast<size_t>(anchor) * channels + channel];
    }
};

// Candidates whose best class score is > confidence_threshold, boxes converted to xyxy model-input pixels.
std::vector<Candidate> decode_candidates(const PredictionsView& predictions, const OutputLayout& layout, int input_width,
                                         int input_height, float confidence_threshold);

// Rows of an in-model-NMS output (nms_applied): those whose score (class_scores.begin) is > confidence_threshold, in
// row order, class id from the class_index value, boxes converted to xyxy model-input pixels.
std::vector<Candidate> decode_rows(const PredictionsView& rows, const OutputLayout& layout, int input_width, int input_height,
                                   float confidence_threshold);

// Greedy NMS, torchvision semantics: visit boxes by descending score, drop a box whose IoU with a kept box is
// > iou_threshold. Class-aware unless agnostic: each class offset by class_id * max(7680 px, 2 * max|coordinate| + 1),
// Ultralytics' max_wh grown so classes never touch even for boxes past 7680 px.
// Returns indices into `candidates`, best score first, at most max_detections of them.
std::vector<int> non_max_suppression(const std::vector<Candidate>& candidates, double iou_threshold, bool agnostic, int max_detections);

// A model-input box -> the original image, clipped to it.
BoxXYXY box_to_source(const BoxXYXY& box, const LetterboxGeometry& geometry);

struct Keypoint {
    float x = 0.f;           // original image pixels, clipped to the image
    float y = 0.f;
    float visibility = 1.f;  // model confidence that the point is visible (1 when the model predicts x, y only)
};

// The keypoints of one anchor, mapped to the original image.
std::vector<Keypoint> decode_keypoints(const PredictionsView& predictions, const OutputLayout& layout, int anchor,
                                       const LetterboxGeometry& geometry);

// Instance mask prototypes of one image: coefficients x (height * width) floats, row-major (channels first).
struct PrototypesView {
    const float* data = nullptr;
    int coefficients = 0;
    int height = 0;
    int width = 0;
};

// The binary mask (CV_8U, 0 or 255) of one detection at the original image size: mask logits = coefficients @
// prototypes, upsampled to the original image without the letterbox padding, > 0, zeroed outside `source_box`.
cv::Mat build_mask(const PredictionsView& predictions, const OutputLayout& layout, int anchor, const PrototypesView& prototypes,
                   const LetterboxGeometry& geometry, const BoxXYXY& source_box);

}  // namespace exportkit
