#include "letterbox.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <opencv2/imgproc.hpp>

namespace exportkit {

int round_half_even(double value) { return static_cast<int>(std::nearbyint(value)); }

LetterboxGeometry compute_letterbox(int source_width, int source_height, int target_width, int target_height, ResizeMode mode,
                                    bool scale_up, bool center) {
    if (source_width < 1 || source_height < 1 || target_width < 1 || target_height < 1)
        throw std::invalid_argument("compute_letterbox: image and input sizes must be positive, got " + std::to_string(source_width) + "x" +
                                    std::to_string(source_height) + " -> " + std::to_string(target_width) + "x" + std::to_string(target_height));
    LetterboxGeometry g;
    g.source_width = source_width;
    g.source_height = source_height;
    g.target_width = target_width;
    g.target_height = target_height;

    if (mode == ResizeMode::Stretch) {
        g.resized_width = target_width;
        g.resized_height = target_height;
    } else {
        double r = std::min(static_cast<double>(target_height) / source_height, static_cast<double>(target_width) / source_width);
        if (!scale_up) r = std::min(r, 1.0);
        g.resized_width = std::max(round_half_even(source_width * r), 1);
        g.resized_height = std::max(round_half_even(source_height * r), 1);
        double dw = target_width - g.resized_width;
        double dh = target_height - g.resized_height;
        if (center) {
            dw /= 2;
            dh /= 2;
            g.pad_top = round_half_even(dh - 0.1);
            g.pad_left = round_half_even(dw - 0.1);
        }
        g.pad_bottom = round_half_even(dh + 0.1);
        g.pad_right = round_half_even(dw + 0.1);
    }
    g.gain_x = static_cast<double>(g.resized_width) / source_width;
    g.gain_y = static_cast<double>(g.resized_height) / source_height;
    return g;
}

cv::Mat apply_letterbox(const cv::Mat& image, const LetterboxGeometry& g, int pad_value) {
    if (image.empty() || image.type() != CV_8UC3) throw std::invalid_argument("apply_letterbox: expected a non-empty BGR uint8 image (CV_8UC3)");
    cv::Mat resized = image;
    if (image.cols != g.resized_width || image.rows != g.resized_height)
        cv::resize(image, resized, cv::Size(g.resized_width, g.resized_height), 0, 0, cv::INTER_LINEAR);
    cv::Mat padded;
    cv::copyMakeBorder(resized, padded, g.pad_top, g.pad_bottom, g.pad_left, g.pad_right, cv::BORDER_CONSTANT,
                       cv::Scalar::all(pad_value));
    // rounding can leave the padded image one pixel off the input size when not centred; never feed a wrong size
    if (padded.cols != g.target_width || padded.rows != g.target_height)
        cv::resize(padded, padded, cv::Size(g.target_width, g.target_height), 0, 0, cv::INTER_LINEAR);
    return padded;
}

void image_to_tensor(const cv::Mat& letterboxed_bgr, const Preprocessing& pre, float* tensor) {
    const cv::Mat& img = letterboxed_bgr;
    if (img.type() != CV_8UC3) throw std::invalid_argument("image_to_tensor: expected a BGR uint8 image (CV_8UC3)");
    const int height = img.rows, width = img.cols;
    const size_t plane = static_cast<size_t>(height) * width;
    float mean[3], std[3];
    for (int c = 0; c < 3; ++c) {
        mean[c] = pre.normalize ? pre.mean[c] : 0.f;
        std[c] = pre.normalize ? pre.std[c] : 1.f;
    }
    for (int y = 0; y < height; ++y) {
        const uint8_t* row = img.ptr<uint8_t>(y);
        for (int x = 0; x < width; ++x) {
            const size_t pixel = static_cast<size_t>(y) * width + x;
            for (int c = 0; c < 3; ++c) {
                const int source_channel = pre.rgb ? 2 - c : c;  // images arrive BGR
                const float value = (static_cast<float>(row[3 * x + source_channel]) - mean[c]) / std[c];
                if (pre.nchw) tensor[c * plane + pixel] = value;
                else tensor[pixel * 3 + c] = value;
            }
        }
    }
}

}  // namespace exportkit
