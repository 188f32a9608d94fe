// The shared conformance vectors (runtimes/conformance/vectors, written by the Python runtime): letterbox geometry,
// NMS, and one decode case per output layout, each compared with the file's own tolerances.
//
//   conformance_tests <vectors dir> [name filter]
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "decode.h"
#include "letterbox.h"
#include "metadata.h"
#include "mini_test.h"
#include "postprocess.h"
#include "results.h"

using namespace exportkit;
using nlohmann::json;

static std::string vectors_dir = "runtimes/conformance/vectors";

static json load(const std::string& name) {
    std::ifstream file(vectors_dir + "/" + name);
    if (!file) throw std::runtime_error("cannot open " + vectors_dir + "/" + name);
    std::stringstream text;
    text << file.rdbuf();
    return json::parse(text.str());
}

TEST(letterbox_vectors) {
    const json vector = load("letterbox.json");
    const json& tol = vector["tolerance"];
    CHECK(!vector["cases"].empty());
    for (const json& c : vector["cases"]) {
        const int before = mini_test::failures();
        const json& want = c["expected"];
        const LetterboxGeometry g = compute_letterbox(c["source_width"], c["source_height"], c["target_width"], c["target_height"],
                                                      ResizeMode::Letterbox, c["scale_up"], c["center"]);
        const std::string name = c["name"];
        CHECK_EQ(g.resized_width, want["resized_width"].get<int>());
        CHECK_EQ(g.resized_height, want["resized_height"].get<int>());
        CHECK_EQ(g.pad_top, want["pad_top"].get<int>());
        CHECK_EQ(g.pad_bottom, want["pad_bottom"].get<int>());
        CHECK_EQ(g.pad_left, want["pad_left"].get<int>());
        CHECK_EQ(g.pad_right, want["pad_right"].get<int>());
        CHECK_NEAR(g.gain_x, want["gain_x"].get<double>(), tol["gain_atol"].get<double>());
        CHECK_NEAR(g.gain_y, want["gain_y"].get<double>(), tol["gain_atol"].get<double>());
        CHECK_NEAR(g.to_source_x(want["input_point"][0]), want["source_point"][0].get<double>(), tol["point_atol"].get<double>());
        CHECK_NEAR(g.to_source_y(want["input_point"][1]), want["source_point"][1].get<double>(), tol["point_atol"].get<double>());
        if (mini_test::failures() > before) std::fprintf(stderr, "  (letterbox case %s)\n", name.c_str());
    }
}

TEST(nms_vectors) {
    const json vector = load("nms.json");
    CHECK(!vector["cases"].empty());
    for (const json& c : vector["cases"]) {
        std::vector<Candidate> candidates;
        for (size_t i = 0; i < c["boxes"].size(); ++i) {
            const json& b = c["boxes"][i];
            Candidate k;
            k.box = {b[0].get<float>(), b[1].get<float>(), b[2].get<float>(), b[3].get<float>()};
            k.score = c["scores"][i].get<float>();
            k.class_id = c["class_ids"][i].get<int>();
            k.anchor = static_cast<int>(i);
            candidates.push_back(k);
        }
        const std::vector<int> keep = non_max_suppression(candidates, c["iou_threshold"].get<double>(), c["agnostic"].get<bool>(),
                                                          c["max_detections"].get<int>());
        const std::vector<int> expected = c["expected_keep"].get<std::vector<int>>();
        if (keep != expected) mini_test::fail(__FILE__, __LINE__, "nms case " + c["name"].get<std::string>() + " keeps " + json(keep).dump() +
                                                                      ", expected " + json(expected).dump());
    }
}

// Row-major 0/1 runs starting with a 0-run -> a CV_8U mask (255 inside).
static cv::Mat rle_to_mask(const json& mask) {
    cv::Mat out(mask["size"][0].get<int>(), mask["size"][1].get<int>(), CV_8U, cv::Scalar(0));
    size_t at = 0;
    bool on = false;
    for (const json& run : mask["counts"]) {
        for (int i = 0; i < run.get<int>(); ++i, ++at) out.data[at] = on ? 255 : 0;
        on = !on;
    }
    return out;
}

static void check_decode(const std::string& file) {
    const int before = mini_test::failures();
    const json vector = load(file);
    const json& tol = vector["tolerance"];
    const ModelMetadata meta = parse_metadata(vector["metadata"].dump(), file);
    std::vector<std::vector<float>> storage;
    auto tensor = [&](const std::string& name) {
        const json& t = vector["outputs"].at(name);
        storage.push_back(t["values"].get<std::vector<float>>());
        return TensorView{storage.back().data(), t["shape"].get<std::vector<int64_t>>()};
    };
    storage.reserve(2);
    const TensorView predictions = tensor(meta.layout.predictions_output);
    TensorView prototypes;
    if (meta.task == Task::Segment) prototypes = tensor(meta.layout.prototypes_output);
    const int width = vector["image"]["width"], height = vector["image"]["height"];
    const Preprocessing& pre = meta.preprocessing;
    const LetterboxGeometry g =
        compute_letterbox(width, height, meta.input_width, meta.input_height, pre.resize_mode, pre.scale_up, pre.letterbox_center);
    const std::vector<Detection> got =
        decode_detections(meta, predictions, meta.task == Task::Segment ? &prototypes : nullptr, g, decode_limits(meta));

    const json& expected = vector["expected"];
    CHECK(!expected.empty());
    CHECK_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size() && i < expected.size(); ++i) {
        const Detection& d = got[i];
        const json& want = expected[i];
        CHECK_EQ(d.class_id, want["class_id"].get<int>());
        CHECK_EQ(d.class_name, want["class_name"].get<std::string>());
        CHECK_NEAR(d.confidence, want["score"].get<double>(), tol["score_atol"].get<double>());
        const float box[4] = {d.box.x1, d.box.y1, d.box.x2, d.box.y2};
        for (int k = 0; k < 4; ++k) CHECK_NEAR(box[k], want["box"][k].get<double>(), tol["box_atol"].get<double>());
        if (want.contains("keypoints")) {
            CHECK_EQ(d.keypoints.size(), want["keypoints"].size());
            for (size_t k = 0; k < d.keypoints.size() && k < want["keypoints"].size(); ++k) {
                CHECK_NEAR(d.keypoints[k].x, want["keypoints"][k][0].get<double>(), tol["keypoint_atol"].get<double>());
                CHECK_NEAR(d.keypoints[k].y, want["keypoints"][k][1].get<double>(), tol["keypoint_atol"].get<double>());
                CHECK_NEAR(d.keypoints[k].visibility, want["keypoints"][k][2].get<double>(), tol["visibility_atol"].get<double>());
            }
        }
        if (want.contains("mask")) {
            const cv::Mat mask = rle_to_mask(want["mask"]);
            CHECK_EQ(cv::countNonZero(mask), want["mask"]["area"].get<int>());
            CHECK(d.mask.size() == mask.size());
            if (d.mask.size() == mask.size()) {
                cv::Mat differ;
                cv::compare(d.mask, mask, differ, cv::CMP_NE);
                CHECK(cv::countNonZero(differ) <= tol["mask_differing_pixels_max"].get<int>());
            }
        }
    }
    if (mini_test::failures() > before) std::fprintf(stderr, "  (in %s)\n", file.c_str());
}

TEST(decode_detect) { check_decode("decode_detect.json"); }
TEST(decode_segment) { check_decode("decode_segment.json"); }
TEST(decode_pose) { check_decode("decode_pose.json"); }
TEST(decode_nms_applied) { check_decode("decode_nms_applied.json"); }
TEST(decode_nhwc) { check_decode("decode_nhwc.json"); }

int main(int argc, char** argv) {
    if (argc > 1) vectors_dir = argv[1];
    return mini_test::run_all(argc - 1, argv + 1);
}
