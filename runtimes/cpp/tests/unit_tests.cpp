// Unit tests of the runtime's pure logic: letterbox arithmetic, tensor layout, decoding, NMS, masks, keypoints,
// RLE, and metadata.json parsing errors. No model and no ONNX Runtime needed.
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "letterbox.h"
#include "metadata.h"
#include "mini_test.h"
#include "postprocess.h"
#include "results.h"

using namespace exportkit;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------- letterbox

TEST(round_half_even_matches_python_round) {
    CHECK_EQ(round_half_even(2.5), 2);
    CHECK_EQ(round_half_even(3.5), 4);
    CHECK_EQ(round_half_even(-0.5), 0);
    CHECK_EQ(round_half_even(23.9), 24);
    CHECK_EQ(round_half_even(24.1), 24);
}

TEST(letterbox_landscape_pads_top_and_bottom) {
    const LetterboxGeometry g = compute_letterbox(320, 240, 192, 192);
    CHECK_EQ(g.resized_width, 192);
    CHECK_EQ(g.resized_height, 144);
    CHECK_EQ(g.pad_left, 0);
    CHECK_EQ(g.pad_right, 0);
    CHECK_EQ(g.pad_top, 24);
    CHECK_EQ(g.pad_bottom, 24);
    CHECK_NEAR(g.gain_x, 0.6, 1e-12);
    CHECK_NEAR(g.gain_y, 0.6, 1e-12);
}

TEST(letterbox_odd_padding_puts_the_extra_pixel_at_the_bottom) {
    // r = 0.96: 200x101 -> 192x97 (96.96 rounds up), dh = 95 / 2 = 47.5 -> top round(47.4) = 47, bottom round(47.6) = 48
    const LetterboxGeometry g = compute_letterbox(200, 101, 192, 192);
    CHECK_EQ(g.resized_height, 97);
    CHECK_EQ(g.pad_top, 47);
    CHECK_EQ(g.pad_bottom, 48);
    CHECK_EQ(g.pad_top + g.resized_height + g.pad_bottom, 192);
    CHECK_NEAR(g.gain_y, 97.0 / 101.0, 1e-12);  // per-axis gain from the rounded size, as Ultralytics' scale_boxes
}

TEST(letterbox_rounds_halves_to_even_like_python) {
    // 384x5 -> r = 0.5, height 2.5 -> Python's round gives 2, not 3
    const LetterboxGeometry g = compute_letterbox(384, 5, 192, 192);
    CHECK_EQ(g.resized_width, 192);
    CHECK_EQ(g.resized_height, 2);
    CHECK_EQ(g.pad_top + g.resized_height + g.pad_bottom, 192);
}

TEST(letterbox_scales_small_images_up_unless_told_not_to) {
    const LetterboxGeometry up = compute_letterbox(100, 50, 192, 192);
    CHECK_EQ(up.resized_width, 192);
    CHECK_EQ(up.resized_height, 96);
    const LetterboxGeometry keep = compute_letterbox(100, 50, 192, 192, ResizeMode::Letterbox, /*scale_up=*/false);
    CHECK_EQ(keep.resized_width, 100);
    CHECK_EQ(keep.resized_height, 50);
    CHECK_EQ(keep.pad_left, 46);
    CHECK_EQ(keep.pad_top, 71);
    CHECK_EQ(keep.pad_bottom, 71);
}

TEST(letterbox_not_centred_pads_right_and_bottom_only) {
    const LetterboxGeometry g = compute_letterbox(320, 240, 192, 192, ResizeMode::Letterbox, true, /*center=*/false);
    CHECK_EQ(g.pad_top, 0);
    CHECK_EQ(g.pad_left, 0);
    CHECK_EQ(g.pad_bottom, 48);
}

TEST(stretch_resizes_each_axis_without_padding) {
    const LetterboxGeometry g = compute_letterbox(320, 240, 192, 192, ResizeMode::Stretch);
    CHECK_EQ(g.resized_width, 192);
    CHECK_EQ(g.resized_height, 192);
    CHECK_EQ(g.pad_top + g.pad_left + g.pad_right + g.pad_bottom, 0);
    CHECK_NEAR(g.gain_x, 0.6, 1e-12);
    CHECK_NEAR(g.gain_y, 0.8, 1e-12);
}

TEST(letterbox_maps_input_coordinates_back_to_the_image) {
    const LetterboxGeometry g = compute_letterbox(320, 240, 192, 192);
    CHECK_NEAR(g.to_source_x(96.f), 160.f, 1e-4);
    CHECK_NEAR(g.to_source_y(24.f), 0.f, 1e-4);    // the top padding edge is the image's first row
    CHECK_NEAR(g.to_source_y(168.f), 240.f, 1e-4);  // and the bottom one its last
}

TEST(letterbox_rejects_empty_sizes) { CHECK_THROWS_WITH(compute_letterbox(0, 10, 192, 192), std::invalid_argument, "positive"); }

TEST(apply_letterbox_pads_with_the_pad_value) {
    cv::Mat image(96, 192, CV_8UC3, cv::Scalar(10, 20, 30));
    const LetterboxGeometry g = compute_letterbox(192, 96, 192, 192);
    const cv::Mat out = apply_letterbox(image, g, 114);
    CHECK_EQ(out.cols, 192);
    CHECK_EQ(out.rows, 192);
    CHECK(out.at<cv::Vec3b>(0, 0) == cv::Vec3b(114, 114, 114));
    CHECK(out.at<cv::Vec3b>(191, 191) == cv::Vec3b(114, 114, 114));
    CHECK(out.at<cv::Vec3b>(96, 96) == cv::Vec3b(10, 20, 30));  // no resize needed: pixels pass through unchanged
}

TEST(image_to_tensor_reorders_channels_and_normalises) {
    cv::Mat image(2, 2, CV_8UC3, cv::Scalar(51, 102, 255));  // B, G, R
    Preprocessing pre;                                       // RGB, NCHW, mean 0, std 255
    std::vector<float> tensor(12);
    image_to_tensor(image, pre, tensor.data());
    CHECK_NEAR(tensor[0], 1.0, 1e-7);   // R plane first
    CHECK_NEAR(tensor[4], 0.4, 1e-7);   // G
    CHECK_NEAR(tensor[8], 0.2, 1e-7);   // B
    pre.rgb = false;
    pre.nchw = false;
    pre.mean = {1.f, 2.f, 5.f};
    pre.std = {50.f, 100.f, 250.f};
    image_to_tensor(image, pre, tensor.data());
    CHECK_NEAR(tensor[0], 1.0, 1e-7);   // NHWC, BGR: (51 - 1) / 50
    CHECK_NEAR(tensor[1], 1.0, 1e-7);   // (102 - 2) / 100
    CHECK_NEAR(tensor[2], 1.0, 1e-7);   // (255 - 5) / 250
}

// ---------------------------------------------------------------------------------------------- NMS

static Candidate candidate(float x1, float y1, float x2, float y2, float score, int class_id) {
    Candidate c;
    c.box = {x1, y1, x2, y2};
    c.score = score;
    c.class_id = class_id;
    return c;
}

TEST(box_iou_of_hand_made_boxes) {
    CHECK_NEAR(box_iou({0, 0, 10, 10}, {0, 0, 10, 10}), 1.0, 1e-7);
    CHECK_NEAR(box_iou({0, 0, 10, 10}, {5, 0, 15, 10}), 50.0 / 150.0, 1e-7);
    CHECK_NEAR(box_iou({0, 0, 10, 10}, {20, 20, 30, 30}), 0.0, 1e-7);
    CHECK_NEAR(box_iou({0, 0, 0, 0}, {0, 0, 0, 0}), 0.0, 1e-7);
}

TEST(nms_keeps_the_best_of_overlapping_boxes_of_one_class) {
    const std::vector<Candidate> c = {candidate(0, 0, 10, 10, 0.8f, 0), candidate(1, 1, 11, 11, 0.9f, 0), candidate(50, 50, 60, 60, 0.7f, 0)};
    const std::vector<int> keep = non_max_suppression(c, 0.45, false, 300);
    CHECK_EQ(keep.size(), 2u);
    CHECK_EQ(keep[0], 1);  // best score first
    CHECK_EQ(keep[1], 2);
}

TEST(nms_is_per_class_unless_agnostic) {
    const std::vector<Candidate> c = {candidate(0, 0, 10, 10, 0.9f, 0), candidate(1, 1, 11, 11, 0.8f, 1)};
    CHECK_EQ(non_max_suppression(c, 0.45, false, 300).size(), 2u);
    CHECK_EQ(non_max_suppression(c, 0.45, true, 300).size(), 1u);
}

TEST(nms_suppresses_only_above_the_threshold) {
    // IoU exactly 1/3: kept at threshold 1/3 + epsilon and at 0.34, suppressed at 0.33
    const std::vector<Candidate> c = {candidate(0, 0, 10, 10, 0.9f, 0), candidate(5, 0, 15, 10, 0.8f, 0)};
    CHECK_EQ(non_max_suppression(c, 0.34, false, 300).size(), 2u);
    CHECK_EQ(non_max_suppression(c, 0.33, false, 300).size(), 1u);
}

TEST(nms_chains_do_not_suppress_through_a_suppressed_box) {
    // A suppresses B; B would suppress C, but B is gone, and A and C do not overlap: A and C stay
    const std::vector<Candidate> c = {candidate(0, 0, 10, 10, 0.9f, 0), candidate(4, 0, 14, 10, 0.8f, 0), candidate(10, 0, 20, 10, 0.7f, 0)};
    const std::vector<int> keep = non_max_suppression(c, 0.3, false, 300);
    CHECK_EQ(keep.size(), 2u);
    CHECK_EQ(keep[1], 2);
}

TEST(nms_caps_the_detections) {
    std::vector<Candidate> c;
    for (int i = 0; i < 10; ++i) c.push_back(candidate(i * 20.f, 0, i * 20.f + 10, 10, 0.5f + i * 0.01f, 0));
    const std::vector<int> keep = non_max_suppression(c, 0.45, false, 3);
    CHECK_EQ(keep.size(), 3u);
    CHECK_EQ(keep[0], 9);
    CHECK(non_max_suppression({}, 0.45, false, 300).empty());
}

// ---------------------------------------------------------------------------------------------- decoding

// predictions [channels, anchors] for 2 classes: cx, cy, w, h, score0, score1 (+ extra channels)
static OutputLayout detect_layout() {
    OutputLayout l;
    l.predictions_output = "output0";
    l.box = {0, 4};
    l.class_scores = {4, 6};
    return l;
}

TEST(decode_keeps_scores_strictly_above_the_threshold_and_converts_boxes) {
    // anchors:       0     1     2
    std::vector<float> p = {50, 20, 30,     // cx
                            40, 20, 30,     // cy
                            20, 10, 10,     // w
                            10, 10, 10,     // h
                            0.9f, 0.25f, 0.1f,   // class 0
                            0.1f, 0.2f, 0.3f};   // class 1
    const std::vector<Candidate> c = decode_candidates({p.data(), 6, 3}, detect_layout(), 192, 192, 0.25f);
    CHECK_EQ(c.size(), 2u);
    CHECK_EQ(c[0].anchor, 0);
    CHECK_EQ(c[0].class_id, 0);
    CHECK_NEAR(c[0].box.x1, 40, 1e-6);
    CHECK_NEAR(c[0].box.y1, 35, 1e-6);
    CHECK_NEAR(c[0].box.x2, 60, 1e-6);
    CHECK_NEAR(c[0].box.y2, 45, 1e-6);
    CHECK_EQ(c[1].anchor, 2);  // 0.25 is not > 0.25
    CHECK_EQ(c[1].class_id, 1);
}

TEST(decode_reads_anchors_first_outputs) {
    // the same two anchors as [anchors, channels]: (cx, cy, w, h, s0, s1) per row
    std::vector<float> p = {50, 40, 20, 10, 0.9f, 0.1f,
                            20, 20, 10, 10, 0.1f, 0.2f};
    const std::vector<Candidate> c = decode_candidates({p.data(), 6, 2, /*anchors_last=*/false}, detect_layout(), 192, 192, 0.25f);
    CHECK_EQ(c.size(), 1u);
    CHECK_NEAR(c[0].box.x1, 40, 1e-6);
    CHECK_NEAR(c[0].score, 0.9, 1e-6);
}

TEST(decode_applies_a_sigmoid_when_scores_are_logits) {
    std::vector<float> p = {10, 10, 4, 4, 0.f, -5.f};
    OutputLayout l = detect_layout();
    l.scores_activated = false;
    const std::vector<Candidate> c = decode_candidates({p.data(), 6, 1}, l, 192, 192, 0.25f);
    CHECK_EQ(c.size(), 1u);
    CHECK_NEAR(c[0].score, 0.5, 1e-6);
}

TEST(boxes_map_to_the_image_and_clip) {
    const LetterboxGeometry g = compute_letterbox(320, 240, 192, 192);  // gain 0.6, pad_top 24
    const BoxXYXY b = box_to_source({-6.f, 24.f, 96.f, 190.f}, g);
    CHECK_NEAR(b.x1, 0, 1e-5);     // clipped
    CHECK_NEAR(b.y1, 0, 1e-5);
    CHECK_NEAR(b.x2, 160, 1e-4);
    CHECK_NEAR(b.y2, 240, 1e-5);   // clipped
}

TEST(keypoints_map_to_the_image_and_keep_visibility) {
    OutputLayout l = detect_layout();
    l.keypoints = {6, 12};
    l.keypoint_dims = 3;
    // 1 anchor: box, 2 scores, then keypoints (96, 60, 0.9) and (-3, 200, 0.1)
    std::vector<float> p = {0, 0, 0, 0, 0, 0, 96, 60, 0.9f, -3, 200, 0.1f};
    const LetterboxGeometry g = compute_letterbox(320, 240, 192, 192);
    const std::vector<Keypoint> k = decode_keypoints({p.data(), 12, 1}, l, 0, g);
    CHECK_EQ(k.size(), 2u);
    CHECK_NEAR(k[0].x, 160, 1e-4);
    CHECK_NEAR(k[0].y, 60, 1e-4);
    CHECK_NEAR(k[0].visibility, 0.9, 1e-6);
    CHECK_NEAR(k[1].x, 0, 1e-6);    // clipped
    CHECK_NEAR(k[1].y, 240, 1e-6);  // clipped
}

// ---------------------------------------------------------------------------------------------- masks

TEST(mask_is_the_positive_logits_inside_the_box_at_image_size) {
    OutputLayout l = detect_layout();
    l.mask_coefficients = {6, 8};
    const int mh = 48, mw = 48;
    std::vector<float> protos(2 * mh * mw);
    for (int y = 0; y < mh; ++y)
        for (int x = 0; x < mw; ++x) {
            protos[y * mw + x] = 1.f;                           // prototype 0: all ones
            protos[mh * mw + y * mw + x] = x < mw / 2 ? 1.f : -1.f;  // prototype 1: +1 left half, -1 right half
        }
    const LetterboxGeometry g = compute_letterbox(320, 240, 192, 192);
    const BoxXYXY box{10.f, 20.f, 300.f, 200.5f};
    std::vector<float> positive = {0, 0, 0, 0, 0, 0, 1.f, 0.f};  // logits = +1 everywhere
    const cv::Mat full = build_mask({positive.data(), 8, 1}, l, 0, {protos.data(), 2, mh, mw}, g, box);
    CHECK_EQ(full.rows, 240);
    CHECK_EQ(full.cols, 320);
    CHECK_EQ(full.type(), CV_8U);
    CHECK_EQ(cv::countNonZero(full), (300 - 10) * (201 - 20));  // columns 10..299, rows 20..200
    CHECK_EQ(static_cast<int>(full.at<uint8_t>(20, 10)), 255);
    CHECK_EQ(static_cast<int>(full.at<uint8_t>(19, 10)), 0);

    std::vector<float> left = {0, 0, 0, 0, 0, 0, 0.f, 1.f};  // logits > 0 on the left half only
    const cv::Mat half = build_mask({left.data(), 8, 1}, l, 0, {protos.data(), 2, mh, mw}, g, {0.f, 0.f, 320.f, 240.f});
    CHECK_EQ(static_cast<int>(half.at<uint8_t>(120, 100)), 255);
    CHECK_EQ(static_cast<int>(half.at<uint8_t>(120, 220)), 0);
    CHECK_NEAR(cv::countNonZero(half), 160 * 240, 240 * 2);  // the edge at x = 160 +- a column

    std::vector<float> negative = {0, 0, 0, 0, 0, 0, -1.f, 0.f};
    CHECK_EQ(cv::countNonZero(build_mask({negative.data(), 8, 1}, l, 0, {protos.data(), 2, mh, mw}, g, box)), 0);
}

TEST(mask_rle_alternates_runs_starting_with_background) {
    cv::Mat mask = (cv::Mat_<uint8_t>(2, 3) << 255, 255, 0, 0, 0, 255);
    CHECK(mask_to_rle(mask) == std::vector<int>({0, 2, 3, 1}));
    cv::Mat empty(2, 2, CV_8U, cv::Scalar(0));
    CHECK(mask_to_rle(empty) == std::vector<int>({4}));
}

// ---------------------------------------------------------------------------------------------- metadata

static json valid_detect_metadata() {
    return json::parse(R"({
      "task": "detect",
      "input_shape": [192, 192, 3],
      "class_names": ["rectangle", "ellipse", "triangle"],
      "inputs": [{"name": "images", "shape": [1, 3, 192, 192], "dtype": "float32"}],
      "outputs": [{"name": "output0", "shape": [1, 7, 756], "dtype": "float32"}],
      "preprocessing": {"mean": [0, 0, 0], "std": [255, 255, 255], "color_space": "RGB", "resize_mode": "letterbox",
                        "normalize": true, "layout": "NCHW", "pad_value": 114, "letterbox_center": true, "scale_up": true},
      "postprocessing": {"apply_nms": true, "confidence_threshold": 0.3, "iou_threshold": 0.5, "coordinate_format": "xyxy",
                         "max_detections": 100, "agnostic_nms": false},
      "output_layout": {"predictions": {"output": "output0", "box": [0, 4], "box_format": "cxcywh", "box_units": "input_pixels",
                                        "class_scores": [4, 7], "scores_activated": true}}
    })");
}

static json valid_pose_metadata() {
    json m = valid_detect_metadata();
    m["task"] = "pose";
    m["class_names"] = {"shape"};
    m["outputs"][0]["shape"] = {1, 17, 756};
    m["output_layout"]["predictions"]["class_scores"] = {4, 5};
    m["output_layout"]["predictions"]["keypoints"] = {5, 17};
    m["output_layout"]["predictions"]["keypoint_format"] = "x, y, visibility";
    m["num_keypoints"] = 4;
    m["keypoint_names"] = {"a", "b", "c", "d"};
    m["skeleton"] = {{1, 2}, {2, 3}};
    return m;
}

static json valid_segment_metadata() {
    json m = valid_detect_metadata();
    m["task"] = "segment";
    m["outputs"] = json::parse(R"([{"name": "output0", "shape": [1, 39, 756], "dtype": "float32"},
                                    {"name": "output1", "shape": [1, 32, 48, 48], "dtype": "float32"}])");
    m["output_layout"]["predictions"]["mask_coefficients"] = {7, 39};
    m["output_layout"]["prototypes"] = {{"output", "output1"}};
    return m;
}

static ModelMetadata parse(const json& doc) { return parse_metadata(doc.dump(), "test.json"); }

static json with(json doc, const std::function<void(json&)>& change) {
    change(doc);
    return doc;
}

TEST(metadata_parses_a_detect_model) {
    const ModelMetadata m = parse(valid_detect_metadata());
    CHECK(m.task == Task::Detect);
    CHECK_EQ(m.input_height, 192);
    CHECK_EQ(m.num_classes(), 3);
    CHECK_EQ(m.class_names[2], std::string("triangle"));
    CHECK(m.preprocessing.rgb);
    CHECK(m.preprocessing.nchw);
    CHECK_EQ(m.preprocessing.pad_value, 114);
    CHECK_NEAR(m.preprocessing.std[0], 255, 0);
    CHECK_NEAR(m.postprocessing.confidence_threshold, 0.3, 1e-12);
    CHECK_NEAR(m.postprocessing.iou_threshold, 0.5, 1e-12);
    CHECK_EQ(m.postprocessing.max_detections, 100);
    CHECK_EQ(m.layout.class_scores.begin, 4);
    CHECK_EQ(m.layout.predictions_output, std::string("output0"));
}

TEST(metadata_parses_pose_and_segment_models) {
    const ModelMetadata pose = parse(valid_pose_metadata());
    CHECK(pose.task == Task::Pose);
    CHECK_EQ(pose.num_keypoints, 4);
    CHECK_EQ(pose.layout.keypoint_dims, 3);
    CHECK_EQ(pose.skeleton.size(), 2u);
    const ModelMetadata segment = parse(valid_segment_metadata());
    CHECK(segment.task == Task::Segment);
    CHECK_EQ(segment.layout.mask_coefficients.size(), 32);
    CHECK_EQ(segment.layout.prototypes_output, std::string("output1"));
}

TEST(metadata_reads_optional_axis_orders) {
    const ModelMetadata m = parse(with(valid_detect_metadata(), [](json& d) {
        d["output_layout"]["predictions"]["shape_order"] = "batch, anchors, channels";
        d["outputs"][0]["shape"] = {1, 756, 7};
    }));
    CHECK(!m.layout.anchors_last);
    CHECK(parse(valid_detect_metadata()).layout.anchors_last);
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [](json& d) { d["output_layout"]["predictions"]["shape_order"] = "anchors"; })),
                      MetadataError, "shape_order must be \"batch, channels, anchors\" or \"batch, anchors, channels\"");
}

TEST(metadata_errors_name_the_problem) {
    CHECK_THROWS_WITH(parse_metadata("{not json", "m.json"), MetadataError, "m.json: not valid JSON");
    CHECK_THROWS_WITH(parse_metadata("[1, 2]", "m.json"), MetadataError, "must be a JSON object");
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [](json& m) { m.erase("class_names"); })), MetadataError, "missing key class_names");
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [](json& m) { m["preprocessing"].erase("mean"); })), MetadataError,
                      "missing key preprocessing.mean");
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [](json& m) { m["task"] = "classify"; })), MetadataError,
                      "supports detect, segment and pose");
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [](json& m) { m["input_shape"] = {192, 192}; })), MetadataError,
                      "input_shape must be [height, width, channels]");
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [](json& m) { m["preprocessing"]["mean"] = "zero"; })), MetadataError,
                      "preprocessing.mean must be an array of 3 numbers, got \"zero\"");
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [](json& m) { m["preprocessing"]["std"] = {255, 0, 255}; })), MetadataError,
                      "non-zero");
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [](json& m) { m["preprocessing"]["resize_mode"] = "crop"; })), MetadataError,
                      "resize_mode must be \"letterbox\" or \"stretch\"");
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [](json& m) { m["preprocessing"]["pad_value"] = 300; })), MetadataError,
                      "pad_value must be an integer in 0..255");
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [](json& m) { m["postprocessing"]["iou_threshold"] = 1.5; })), MetadataError,
                      "iou_threshold must be a number in 0..1");
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [](json& m) { m["inputs"][0]["dtype"] = "int8"; })), MetadataError,
                      "float32 and float16 tensors only");
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [](json& m) { m["class_names"].push_back("star"); })), MetadataError,
                      "class_scores spans 3 channels but class_names has 4 names");
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [](json& m) { m["output_layout"]["predictions"]["output"] = "boxes"; })),
                      MetadataError, "names \"boxes\", which is not one of outputs[].name");
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [](json& m) { m["output_layout"]["predictions"]["box"] = {4, 0}; })),
                      MetadataError, "box must be [begin, end] with 0 <= begin < end");
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [](json& m) { m["outputs"][0]["shape"] = {1, 6, 756}; })), MetadataError,
                      "output_layout needs 7 channels but output \"output0\" has 6");
}

TEST(metadata_errors_for_segment_and_pose_facts) {
    CHECK_THROWS_WITH(parse(with(valid_segment_metadata(), [](json& m) { m["output_layout"].erase("prototypes"); })), MetadataError,
                      "missing key output_layout.prototypes");
    CHECK_THROWS_WITH(parse(with(valid_segment_metadata(), [](json& m) { m["output_layout"]["predictions"]["mask_coefficients"] = {7, 30}; })),
                      MetadataError, "mask_coefficients spans 23 channels but the prototypes output has 32");
    CHECK_THROWS_WITH(parse(with(valid_pose_metadata(), [](json& m) { m.erase("num_keypoints"); })), MetadataError, "missing key num_keypoints");
    CHECK_THROWS_WITH(parse(with(valid_pose_metadata(), [](json& m) { m["num_keypoints"] = 5; })), MetadataError,
                      "keypoints spans 12 channels, expected num_keypoints (5) x 3");
    CHECK_THROWS_WITH(parse(with(valid_pose_metadata(), [](json& m) { m["output_layout"]["predictions"]["keypoint_format"] = "xyz"; })),
                      MetadataError, "keypoint_format must be");
}

TEST(metadata_reads_in_model_nms_rows) {
    const auto rows = [](json& m) {
        m["outputs"][0]["shape"] = {1, 300, 6};
        json& p = m["output_layout"]["predictions"];
        p["shape_order"] = "batch, detections, values";
        p["box_format"] = "xyxy";
        p["class_scores"] = {4, 5};
        p["class_index"] = 5;
        p["nms_applied"] = true;
    };
    const ModelMetadata m = parse(with(valid_detect_metadata(), rows));
    CHECK(m.layout.nms_applied);
    CHECK(!m.layout.anchors_last);
    CHECK_EQ(m.layout.class_index, 5);
    CHECK_EQ(m.layout.channels_needed(), 6);
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [&](json& d) { rows(d); d["output_layout"]["predictions"].erase("nms_applied"); })),
                      MetadataError, "\"batch, detections, values\" and nms_applied true go together");
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [&](json& d) { rows(d); d["output_layout"]["predictions"].erase("class_index"); })),
                      MetadataError, "missing key output_layout.predictions.class_index");
    CHECK_THROWS_WITH(parse(with(valid_detect_metadata(), [&](json& d) { rows(d); d["outputs"][0]["shape"] = {1, 300, 5}; })),
                      MetadataError, "output_layout needs 6 channels");
}

TEST(nms_class_offset_outgrows_large_boxes) {
    // a class-1 box at 100 px shifted by a fixed 7680 would land on the class-0 box at 7780 px
    std::vector<Candidate> c(2);
    c[0].box = {7780, 7780, 8780, 8780};
    c[0].score = 0.9f;
    c[1].box = {100, 100, 1100, 1100};
    c[1].score = 0.8f;
    c[1].class_id = 1;
    CHECK_EQ(non_max_suppression(c, 0.45, false, 300).size(), 2u);
    CHECK_EQ(non_max_suppression(c, 0.45, true, 300).size(), 2u);  // agnostic: no overlap either
}

TEST(metadata_file_errors) {
    CHECK_THROWS_WITH(load_metadata("/nonexistent/metadata.json"), MetadataError, "/nonexistent/metadata.json: cannot open");
}

int main(int argc, char** argv) { return mini_test::run_all(argc, argv); }
