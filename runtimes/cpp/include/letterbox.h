// Letterbox arithmetic (Ultralytics' LetterBox and scale_boxes): fit the image inside the model input keeping its
// aspect ratio, pad the rest, and map model-input coordinates back to the original image.
#pragma once

#include <opencv2/core.hpp>

#include "metadata.h"

namespace exportkit {

// Python's round(): halves go to the even neighbour, as std::nearbyint does in the default rounding mode.
int round_half_even(double value);

struct LetterboxGeometry {
    int source_width = 0, source_height = 0;    // original image
    int target_width = 0, target_height = 0;    // model input
    int resized_width = 0, resized_height = 0;  // image content inside the model input
    int pad_left = 0, pad_top = 0, pad_right = 0, pad_bottom = 0;
    double gain_x = 1.0, gain_y = 1.0;          // resized / source, per axis (after rounding the resized size)

    // Model-input pixel coordinates -> original image pixel coordinates (not clipped).
    float to_source_x(float x) const { return static_cast<float>((x - pad_left) / gain_x); }
    float to_source_y(float y) const { return static_cast<float>((y - pad_top) / gain_y); }
};

// The geometry for an image of source_width x source_height fed to a target_width x target_height input.
// Letterbox: one scale r = min(target/source) (capped at 1 unless scale_up), content rounded, padding split
// around it when center (top = round(dh/2 - 0.1), bottom = round(dh/2 + 0.1)). Stretch: resize to the target.
LetterboxGeometry compute_letterbox(int source_width, int source_height, int target_width, int target_height,
                                    ResizeMode mode = ResizeMode::Letterbox, bool scale_up = true, bool center = true);

// Resize (bilinear) and pad (pad_value on every channel) a BGR uint8 image into the model input size.
cv::Mat apply_letterbox(const cv::Mat& image, const LetterboxGeometry& geometry, int pad_value);

// Fill a float tensor buffer (1 x 3 x H x W for NCHW, 1 x H x W x 3 for NHWC) from a letterboxed BGR uint8 image:
// reorder channels to the model's colour order, then (value - mean) / std when normalize is set.
void image_to_tensor(const cv::Mat& letterboxed_bgr, const Preprocessing& preprocessing, float* tensor);

}  // namespace exportkit
