#include "results.h"

#include <stdexcept>

#include <nlohmann/json.hpp>

namespace exportkit {

std::vector<int> mask_to_rle(const cv::Mat& mask) {
    if (mask.type() != CV_8U) throw std::invalid_argument("mask_to_rle: expected a CV_8U mask");
    std::vector<int> counts;
    bool current = false;  // runs start with background
    int run = 0;
    for (int y = 0; y < mask.rows; ++y) {
        const uint8_t* row = mask.ptr<uint8_t>(y);
        for (int x = 0; x < mask.cols; ++x) {
            const bool on = row[x] != 0;
            if (on != current) {
                counts.push_back(run);
                current = on;
                run = 0;
            }
            ++run;
        }
    }
    counts.push_back(run);
    return counts;
}

std::string results_to_json(const Results& results, const std::string& task, int indent) {
    using nlohmann::json;
    json detections = json::array();
    for (const Detection& d : results.detections) {
        json item = {{"class_id", d.class_id},
                     {"class_name", d.class_name},
                     {"confidence", d.confidence},
                     {"box", {d.box.x1, d.box.y1, d.box.x2, d.box.y2}}};
        if (!d.keypoints.empty()) {
            json points = json::array();
            for (const Keypoint& k : d.keypoints) points.push_back({k.x, k.y, k.visibility});
            item["keypoints"] = points;
        }
        if (!d.mask.empty()) item["mask"] = {{"size", {d.mask.rows, d.mask.cols}}, {"counts", mask_to_rle(d.mask)}};
        detections.push_back(item);
    }
    json doc = {{"task", task},
                {"image", {{"width", results.image_width}, {"height", results.image_height}}},
                {"timing_ms",
                 {{"preprocess", results.timing.preprocess_ms}, {"inference", results.timing.inference_ms}, {"postprocess", results.timing.postprocess_ms}}},
                {"detections", detections}};
    return doc.dump(indent);
}

}  // namespace exportkit
