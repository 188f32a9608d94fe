#include "postprocess.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace exportkit {

namespace {

constexpr int kMaxBoxesIntoNms = 30000;  // Ultralytics' max_nms
constexpr float kClassOffset = 7680.f;   // Ultralytics' max_wh: separates classes for class-aware NMS

float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

}  // namespace

float box_iou(const BoxXYXY& a, const BoxXYXY& b) {
    const float w = std::max(0.f, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
    const float h = std::max(0.f, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
    const float inter = w * h;
    const float uni = a.area() + b.area() - inter;
    return uni > 0.f ? inter / uni : 0.f;
}

namespace {

BoxXYXY input_box(const PredictionsView& p, const OutputLayout& layout, int anchor, int input_width, int input_height) {
    const int b = layout.box.begin;
    float v0 = p.at(b, anchor), v1 = p.at(b + 1, anchor), v2 = p.at(b + 2, anchor), v3 = p.at(b + 3, anchor);
    if (layout.box_normalized) v0 *= input_width, v1 *= input_height, v2 *= input_width, v3 *= input_height;
    if (layout.box_xyxy) return {v0, v1, v2, v3};
    const float half_w = v2 / 2, half_h = v3 / 2;
    return {v0 - half_w, v1 - half_h, v0 + half_w, v1 + half_h};
}

}  // namespace

std::vector<Candidate> decode_rows(const PredictionsView& p, const OutputLayout& layout, int input_width, int input_height,
                                   float confidence_threshold) {
    std::vector<Candidate> rows;
    for (int a = 0; a < p.anchors; ++a) {
        const float score = p.at(layout.class_scores.begin, a);
        if (!(score > confidence_threshold)) continue;
        Candidate c;
        c.box = input_box(p, layout, a, input_width, input_height);
        c.score = score;
        c.class_id = static_cast<int>(p.at(layout.class_index, a));
        c.anchor = a;
        rows.push_back(c);
    }
    return rows;
}

std::vector<Candidate> decode_candidates(const PredictionsView& p, const OutputLayout& layout, int input_width, int input_height,
                                         float confidence_threshold) {
    std::vector<Candidate> candidates;
    const int first = layout.class_scores.begin;
    const int count = layout.class_scores.size();
    for (int a = 0; a < p.anchors; ++a) {
        int best = 0;
        float best_score = p.at(first, a);
        for (int c = 1; c < count; ++c) {
            const float s = p.at(first + c, a);
            if (s > best_score) best_score = s, best = c;
        }
        if (!layout.scores_activated) best_score = sigmoid(best_score);
        if (!(best_score > confidence_threshold)) continue;

        Candidate c;
        c.box = input_box(p, layout, a, input_width, input_height);
        c.score = best_score;
        c.class_id = best;
        c.anchor = a;
        candidates.push_back(c);
    }
    return candidates;
}

std::vector<int> non_max_suppression(const std::vector<Candidate>& candidates, double iou_threshold, bool agnostic, int max_detections) {
    std::vector<int> order(candidates.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int i, int j) { return candidates[i].score > candidates[j].score; });
    if (order.size() > static_cast<size_t>(kMaxBoxesIntoNms)) order.resize(kMaxBoxesIntoNms);

    float largest = 0.f;  // the offset outgrows the boxes (Python runtime: max(max_wh, 2 * max|coordinate| + 1))
    for (int i : order)
        largest = std::max({largest, std::fabs(candidates[i].box.x1), std::fabs(candidates[i].box.y1), std::fabs(candidates[i].box.x2),
                             std::fabs(candidates[i].box.y2)});
    const float class_offset = std::max(kClassOffset, largest * 2 + 1);
    std::vector<BoxXYXY> boxes(order.size());
    std::vector<float> areas(order.size());
    for (size_t k = 0; k < order.size(); ++k) {
        const Candidate& c = candidates[order[k]];
        const float offset = agnostic ? 0.f : static_cast<float>(c.class_id) * class_offset;
        boxes[k] = {c.box.x1 + offset, c.box.y1 + offset, c.box.x2 + offset, c.box.y2 + offset};
        areas[k] = boxes[k].area();
    }
    std::vector<int> keep;
    std::vector<char> suppressed(order.size(), 0);
    for (size_t i = 0; i < order.size() && keep.size() < static_cast<size_t>(max_detections); ++i) {
        if (suppressed[i]) continue;
        keep.push_back(order[i]);
        const BoxXYXY& a = boxes[i];
        for (size_t j = i + 1; j < order.size(); ++j) {
            if (suppressed[j]) continue;
            const BoxXYXY& o = boxes[j];
            const float w = std::max(0.f, std::min(a.x2, o.x2) - std::max(a.x1, o.x1));
            const float h = std::max(0.f, std::min(a.y2, o.y2) - std::max(a.y1, o.y1));
            const float inter = w * h;
            const float iou = inter / (areas[i] + areas[j] - inter);
            if (static_cast<double>(iou) > iou_threshold) suppressed[j] = 1;
        }
    }
    return keep;
}

BoxXYXY box_to_source(const BoxXYXY& box, const LetterboxGeometry& g) {
    const float w = static_cast<float>(g.source_width), h = static_cast<float>(g.source_height);
    return {std::clamp(g.to_source_x(box.x1), 0.f, w), std::clamp(g.to_source_y(box.y1), 0.f, h),
            std::clamp(g.to_source_x(box.x2), 0.f, w), std::clamp(g.to_source_y(box.y2), 0.f, h)};
}

std::vector<Keypoint> decode_keypoints(const PredictionsView& p, const OutputLayout& layout, int anchor, const LetterboxGeometry& g) {
    const int dims = layout.keypoint_dims;
    const int count = layout.keypoints.size() / dims;
    const float w = static_cast<float>(g.source_width), h = static_cast<float>(g.source_height);
    const float scale_x = layout.keypoints_normalized ? static_cast<float>(g.target_width) : 1.f;
    const float scale_y = layout.keypoints_normalized ? static_cast<float>(g.target_height) : 1.f;
    std::vector<Keypoint> keypoints(count);
    for (int k = 0; k < count; ++k) {
        const int channel = layout.keypoints.begin + k * dims;
        keypoints[k].x = std::clamp(g.to_source_x(p.at(channel, anchor) * scale_x), 0.f, w);
        keypoints[k].y = std::clamp(g.to_source_y(p.at(channel + 1, anchor) * scale_y), 0.f, h);
        keypoints[k].visibility = dims == 3 ? p.at(channel + 2, anchor) : 1.f;
    }
    return keypoints;
}

namespace {

// Source coordinate of output index `i` for a bilinear resize with half-pixel centres (torch's interpolate with
// align_corners=False, cv::resize INTER_LINEAR): lower index, upper index, weight of the upper one.
struct Tap {
    int lo, hi;
    float weight;
};

Tap bilinear_tap(int i, float scale, int source_size) {
    const float s = std::max(scale * (static_cast<float>(i) + 0.5f) - 0.5f, 0.f);
    const int lo = std::min(static_cast<int>(s), source_size - 1);
    const int hi = std::min(lo + 1, source_size - 1);
    return {lo, hi, s - static_cast<float>(lo)};
}

// Resize `source` (CV_32F, any step) to out_size bilinearly, evaluating only the pixels inside `roi` (of the output).
cv::Mat resize_bilinear(const cv::Mat& source, cv::Size out_size, cv::Rect roi) {
    const float scale_x = static_cast<float>(source.cols) / out_size.width;
    const float scale_y = static_cast<float>(source.rows) / out_size.height;
    std::vector<Tap> taps_x(roi.width);
    for (int x = 0; x < roi.width; ++x) taps_x[x] = bilinear_tap(roi.x + x, scale_x, source.cols);
    cv::Mat out(roi.size(), CV_32F);
    for (int y = 0; y < roi.height; ++y) {
        const Tap ty = bilinear_tap(roi.y + y, scale_y, source.rows);
        const float* r0 = source.ptr<float>(ty.lo);
        const float* r1 = source.ptr<float>(ty.hi);
        float* dst = out.ptr<float>(y);
        for (int x = 0; x < roi.width; ++x) {
            const Tap& tx = taps_x[x];
            const float top = (1.f - tx.weight) * r0[tx.lo] + tx.weight * r0[tx.hi];
            const float bottom = (1.f - tx.weight) * r1[tx.lo] + tx.weight * r1[tx.hi];
            dst[x] = (1.f - ty.weight) * top + ty.weight * bottom;
        }
    }
    return out;
}

// The smallest power-of-two upsampling of the prototypes (1, 2, 4, ... up to the input stride) at which the letterbox
// content edges fall on whole pixels, so cropping the padding needs no sub-pixel shift (Ultralytics' f).
int prototype_upsampling(const PrototypesView& protos, const LetterboxGeometry& g) {
    const int stride_y = g.target_height / protos.height, stride_x = g.target_width / protos.width;
    const bool integral = stride_y * protos.height == g.target_height && stride_x * protos.width == g.target_width;
    if (!integral || stride_x != stride_y) return 0;  // 0: upsample to the full input size
    const int edges[4] = {g.pad_top, g.pad_top + g.resized_height, g.pad_left, g.pad_left + g.resized_width};
    for (int f = 1; f < stride_x; f *= 2) {
        const int step = stride_x / f;
        if (step * f == stride_x && std::all_of(std::begin(edges), std::end(edges), [&](int e) { return e % step == 0; })) return f;
    }
    return stride_x;
}

}  // namespace

cv::Mat build_mask(const PredictionsView& p, const OutputLayout& layout, int anchor, const PrototypesView& protos, const LetterboxGeometry& g,
                   const BoxXYXY& source_box) {
    if (layout.mask_coefficients.size() != protos.coefficients)
        throw std::runtime_error("build_mask: " + std::to_string(layout.mask_coefficients.size()) + " mask coefficients but " +
                                 std::to_string(protos.coefficients) + " prototypes");
    // 1. mask logits at prototype resolution
    const int plane = protos.height * protos.width;
    cv::Mat logits(protos.height, protos.width, CV_32F, cv::Scalar(0.f));
    float* out = logits.ptr<float>();
    for (int k = 0; k < protos.coefficients; ++k) {
        const float c = p.at(layout.mask_coefficients.begin + k, anchor);
        const float* proto = protos.data + static_cast<size_t>(k) * plane;
        for (int i = 0; i < plane; ++i) out[i] += c * proto[i];
    }

    // 2. upsample so the padding can be cropped on whole pixels, then crop it (Ultralytics' scale_masks)
    const int f = prototype_upsampling(protos, g);
    const cv::Size up = f ? cv::Size(protos.width * f, protos.height * f) : cv::Size(g.target_width, g.target_height);
    cv::Mat upsampled = up == logits.size() ? logits : resize_bilinear(logits, up, cv::Rect(cv::Point(0, 0), up));
    const double gain = std::min(static_cast<double>(up.height) / g.source_height, static_cast<double>(up.width) / g.source_width);
    const int content_h = std::max(round_half_even(g.source_height * gain), 1), content_w = std::max(round_half_even(g.source_width * gain), 1);
    const int top = round_half_even((up.height - content_h) / 2.0 - 0.1), left = round_half_even((up.width - content_w) / 2.0 - 0.1);
    cv::Rect content(left, top, content_w, content_h);
    content &= cv::Rect(cv::Point(0, 0), up);
    const cv::Mat cropped = upsampled(content);

    // 3. bilinear to the original size, only inside the box (pixel centres: col >= x1 and col < x2), then > 0
    cv::Mat mask(g.source_height, g.source_width, CV_8U, cv::Scalar(0));
    const int x0 = std::max(0, static_cast<int>(std::ceil(source_box.x1))), x1 = std::min(g.source_width, static_cast<int>(std::ceil(source_box.x2)));
    const int y0 = std::max(0, static_cast<int>(std::ceil(source_box.y1))), y1 = std::min(g.source_height, static_cast<int>(std::ceil(source_box.y2)));
    if (x1 <= x0 || y1 <= y0 || cropped.empty()) return mask;
    const cv::Rect roi(x0, y0, x1 - x0, y1 - y0);
    const cv::Mat values = resize_bilinear(cropped, mask.size(), roi);
    cv::Mat inside = mask(roi);
    for (int y = 0; y < roi.height; ++y) {
        const float* v = values.ptr<float>(y);
        uint8_t* m = inside.ptr<uint8_t>(y);
        for (int x = 0; x < roi.width; ++x) m[x] = v[x] > 0.f ? 255 : 0;
    }
    return mask;
}

}  // namespace exportkit
