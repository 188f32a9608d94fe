#include "metadata.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace exportkit {

using nlohmann::json;

const char* task_name(Task task) {
    switch (task) {
        case Task::Detect: return "detect";
        case Task::Segment: return "segment";
        case Task::Pose: return "pose";
    }
    return "unknown";
}

namespace {

const char* const kRegenerateHint = "; re-export the model with exportkit to regenerate metadata.json";

std::string describe(const json& value) {
    std::string text = value.dump();
    return text.size() > 60 ? text.substr(0, 57) + "..." : text;
}

// Reads typed values out of the parsed document; every failure names the file, the key path and the expectation.
class Reader {
public:
    explicit Reader(std::string source) : source_(std::move(source)) {}

    [[noreturn]] void fail(const std::string& message) const { throw MetadataError(source_ + ": " + message); }

    [[noreturn]] void wrong(const std::string& path, const std::string& expected, const json& found) const {
        fail(path + " must be " + expected + ", got " + describe(found) + kRegenerateHint);
    }

    const json& require(const json& object, const std::string& key, const std::string& path) const {
        auto it = object.find(key);
        if (it == object.end()) fail("missing key " + path + kRegenerateHint);
        return *it;
    }

    const json& object(const json& parent, const std::string& key, const std::string& path) const {
        const json& value = require(parent, key, path);
        if (!value.is_object()) wrong(path, "an object", value);
        return value;
    }

    std::string string(const json& parent, const std::string& key, const std::string& path) const {
        const json& value = require(parent, key, path);
        if (!value.is_string()) wrong(path, "a string", value);
        return value.get<std::string>();
    }

    bool boolean(const json& parent, const std::string& key, const std::string& path, bool fallback) const {
        auto it = parent.find(key);
        if (it == parent.end()) return fallback;
        if (!it->is_boolean()) wrong(path, "true or false", *it);
        return it->get<bool>();
    }

    double number(const json& parent, const std::string& key, const std::string& path) const {
        const json& value = require(parent, key, path);
        if (!value.is_number()) wrong(path, "a number", value);
        return value.get<double>();
    }

    int integer(const json& value, const std::string& path) const {
        if (!value.is_number_integer()) wrong(path, "an integer", value);
        return value.get<int>();
    }

    int integer(const json& parent, const std::string& key, const std::string& path) const {
        return integer(require(parent, key, path), path);
    }

    std::vector<int64_t> shape(const json& value, const std::string& path) const {
        if (!value.is_array() || value.empty()) wrong(path, "a non-empty array of integers (-1 for dynamic)", value);
        std::vector<int64_t> dims;
        for (const json& d : value) {
            if (!d.is_number_integer() || d.get<int64_t>() < -1) wrong(path, "an array of integers >= -1", value);
            dims.push_back(d.get<int64_t>());
        }
        return dims;
    }

    std::array<float, 3> triple(const json& parent, const std::string& key, const std::string& path) const {
        const json& value = require(parent, key, path);
        if (!value.is_array() || value.size() != 3) wrong(path, "an array of 3 numbers", value);
        std::array<float, 3> out{};
        for (size_t i = 0; i < 3; ++i) {
            if (!value[i].is_number()) wrong(path, "an array of 3 numbers", value);
            out[i] = value[i].get<float>();
        }
        return out;
    }

    ChannelRange range(const json& parent, const std::string& key, const std::string& path) const {
        const json& value = require(parent, key, path);
        if (!value.is_array() || value.size() != 2 || !value[0].is_number_integer() || !value[1].is_number_integer())
            wrong(path, "[begin, end] channel indices", value);
        ChannelRange r{value[0].get<int>(), value[1].get<int>()};
        if (r.begin < 0 || r.end <= r.begin) wrong(path, "[begin, end] with 0 <= begin < end", value);
        return r;
    }

    // Index of the string value among `allowed`; `fallback` when the key is absent (-1: the key is required).
    int choice(const json& parent, const std::string& key, const std::string& path, const std::vector<std::string>& allowed,
               int fallback = 0) const {
        auto it = parent.find(key);
        if (it == parent.end()) {
            if (fallback < 0) fail("missing key " + path + kRegenerateHint);
            return fallback;
        }
        for (size_t i = 0; i < allowed.size(); ++i)
            if (it->is_string() && it->get<std::string>() == allowed[i]) return static_cast<int>(i);
        std::string expected;
        for (size_t i = 0; i < allowed.size(); ++i) expected += (i ? (i + 1 == allowed.size() ? " or \"" : ", \"") : "\"") + allowed[i] + "\"";
        wrong(path, expected, *it);
    }

    ElementType dtype(const json& parent, const std::string& path) const {
        const std::string name = string(parent, "dtype", path + ".dtype");
        if (name == "float32") return ElementType::Float32;
        if (name == "float16") return ElementType::Float16;
        fail(path + ".dtype is \"" + name + "\"; the C++ runtime reads float32 and float16 tensors only");
    }

    std::vector<TensorSpec> tensors(const json& root, const std::string& key) const {
        const json& list = require(root, key, key);
        if (!list.is_array() || list.empty()) wrong(key, "a non-empty array of {name, shape, dtype}", list);
        std::vector<TensorSpec> specs;
        for (size_t i = 0; i < list.size(); ++i) {
            const std::string path = key + "[" + std::to_string(i) + "]";
            if (!list[i].is_object()) wrong(path, "an object {name, shape, dtype}", list[i]);
            specs.push_back({string(list[i], "name", path + ".name"), shape(require(list[i], "shape", path + ".shape"), path + ".shape"),
                             dtype(list[i], path)});
        }
        return specs;
    }

private:
    std::string source_;
};

Task parse_task(const Reader& r, const json& root) {
    const std::string task = r.string(root, "task", "task");
    if (task == "detect") return Task::Detect;
    if (task == "segment") return Task::Segment;
    if (task == "pose") return Task::Pose;
    r.fail("task is \"" + task + "\"; the C++ runtime supports detect, segment and pose");
}

Preprocessing parse_preprocessing(const Reader& r, const json& root) {
    const json& p = r.object(root, "preprocessing", "preprocessing");
    Preprocessing pre;
    pre.mean = r.triple(p, "mean", "preprocessing.mean");
    pre.std = r.triple(p, "std", "preprocessing.std");
    for (float s : pre.std)
        if (s == 0.f) r.wrong("preprocessing.std", "non-zero numbers", p["std"]);
    pre.normalize = r.boolean(p, "normalize", "preprocessing.normalize", true);

    const std::string colour = r.string(p, "color_space", "preprocessing.color_space");
    if (colour != "RGB" && colour != "BGR") r.wrong("preprocessing.color_space", "\"RGB\" or \"BGR\"", p["color_space"]);
    pre.rgb = colour == "RGB";

    const std::string layout = r.string(p, "layout", "preprocessing.layout");
    if (layout != "NCHW" && layout != "NHWC") r.wrong("preprocessing.layout", "\"NCHW\" or \"NHWC\"", p["layout"]);
    pre.nchw = layout == "NCHW";

    const std::string mode = r.string(p, "resize_mode", "preprocessing.resize_mode");
    if (mode != "letterbox" && mode != "stretch") r.wrong("preprocessing.resize_mode", "\"letterbox\" or \"stretch\"", p["resize_mode"]);
    pre.resize_mode = mode == "letterbox" ? ResizeMode::Letterbox : ResizeMode::Stretch;

    pre.pad_value = r.integer(p, "pad_value", "preprocessing.pad_value");
    if (pre.pad_value < 0 || pre.pad_value > 255) r.wrong("preprocessing.pad_value", "an integer in 0..255", p["pad_value"]);
    pre.letterbox_center = r.boolean(p, "letterbox_center", "preprocessing.letterbox_center", true);
    pre.scale_up = r.boolean(p, "scale_up", "preprocessing.scale_up", true);
    return pre;
}

Postprocessing parse_postprocessing(const Reader& r, const json& root) {
    const json& p = r.object(root, "postprocessing", "postprocessing");
    Postprocessing post;
    post.confidence_threshold = r.number(p, "confidence_threshold", "postprocessing.confidence_threshold");
    post.iou_threshold = r.number(p, "iou_threshold", "postprocessing.iou_threshold");
    if (post.confidence_threshold < 0.0 || post.confidence_threshold > 1.0)
        r.wrong("postprocessing.confidence_threshold", "a number in 0..1", p["confidence_threshold"]);
    if (post.iou_threshold < 0.0 || post.iou_threshold > 1.0)
        r.wrong("postprocessing.iou_threshold", "a number in 0..1", p["iou_threshold"]);
    if (p.contains("max_detections")) {
        post.max_detections = r.integer(p, "max_detections", "postprocessing.max_detections");
        if (post.max_detections < 1) r.wrong("postprocessing.max_detections", "an integer >= 1", p["max_detections"]);
    }
    post.agnostic_nms = r.boolean(p, "agnostic_nms", "postprocessing.agnostic_nms", false);
    return post;
}

const TensorSpec* find_tensor(const std::vector<TensorSpec>& specs, const std::string& name) {
    for (const TensorSpec& spec : specs)
        if (spec.name == name) return &spec;
    return nullptr;
}

OutputLayout parse_output_layout(const Reader& r, const json& root, const ModelMetadata& meta) {
    const json& layout = r.object(root, "output_layout", "output_layout");
    const json& p = r.object(layout, "predictions", "output_layout.predictions");
    OutputLayout out;
    out.predictions_output = r.string(p, "output", "output_layout.predictions.output");
    const TensorSpec* predictions = find_tensor(meta.outputs, out.predictions_output);
    if (!predictions)
        r.fail("output_layout.predictions.output names \"" + out.predictions_output + "\", which is not one of outputs[].name");

    out.nms_applied = r.boolean(p, "nms_applied", "output_layout.predictions.nms_applied", false);
    const bool rows = p.contains("shape_order") && p["shape_order"] == "batch, detections, values";
    if (rows != out.nms_applied)
        r.fail("output_layout.predictions: shape_order \"batch, detections, values\" and nms_applied true go together" + std::string(kRegenerateHint));
    if (rows) {
        out.anchors_last = false;  // one row per detection: read like [batch, anchors, channels]
        out.class_index = r.integer(p, "class_index", "output_layout.predictions.class_index");
        if (out.class_index < 0) r.wrong("output_layout.predictions.class_index", "an integer >= 0", p["class_index"]);
    } else {
        out.anchors_last = r.choice(p, "shape_order", "output_layout.predictions.shape_order", {"batch, channels, anchors", "batch, anchors, channels"}) == 0;
    }
    out.box = r.range(p, "box", "output_layout.predictions.box");
    if (out.box.size() != 4) r.wrong("output_layout.predictions.box", "a range of 4 channels", p["box"]);
    const std::string format = r.string(p, "box_format", "output_layout.predictions.box_format");
    if (format != "cxcywh" && format != "xyxy") r.wrong("output_layout.predictions.box_format", "\"cxcywh\" or \"xyxy\"", p["box_format"]);
    out.box_xyxy = format == "xyxy";
    const std::string units = r.string(p, "box_units", "output_layout.predictions.box_units");
    if (units != "input_pixels" && units != "normalized")
        r.wrong("output_layout.predictions.box_units", "\"input_pixels\" or \"normalized\"", p["box_units"]);
    out.box_normalized = units == "normalized";

    out.class_scores = r.range(p, "class_scores", "output_layout.predictions.class_scores");
    if (!out.nms_applied && out.class_scores.size() != meta.num_classes())
        r.fail("output_layout.predictions.class_scores spans " + std::to_string(out.class_scores.size()) + " channels but class_names has " +
               std::to_string(meta.num_classes()) + " names" + kRegenerateHint);
    out.scores_activated = r.boolean(p, "scores_activated", "output_layout.predictions.scores_activated", true);

    int needed = std::max({out.box.end, out.class_scores.end, out.class_index + 1});
    if (meta.task == Task::Segment) {
        out.mask_coefficients = r.range(p, "mask_coefficients", "output_layout.predictions.mask_coefficients");
        const json& prototypes = r.object(layout, "prototypes", "output_layout.prototypes");
        out.prototypes_output = r.string(prototypes, "output", "output_layout.prototypes.output");
        out.prototypes_channels_first = r.choice(prototypes, "shape_order", "output_layout.prototypes.shape_order",
                                                 {"batch, coefficients, height, width", "batch, height, width, coefficients"}) == 0;
        const TensorSpec* protos = find_tensor(meta.outputs, out.prototypes_output);
        if (!protos) r.fail("output_layout.prototypes.output names \"" + out.prototypes_output + "\", which is not one of outputs[].name");
        if (protos->shape.size() != 4) r.wrong("the prototypes output's shape", "[batch, coefficients, height, width]", json(protos->shape));
        const int64_t coefficients = protos->shape[out.prototypes_channels_first ? 1 : 3];
        if (coefficients != -1 && coefficients != out.mask_coefficients.size())
            r.fail("output_layout.predictions.mask_coefficients spans " + std::to_string(out.mask_coefficients.size()) +
                   " channels but the prototypes output has " + std::to_string(coefficients) + kRegenerateHint);
        needed = std::max(needed, out.mask_coefficients.end);
    }
    if (meta.task == Task::Pose) {
        out.keypoints = r.range(p, "keypoints", "output_layout.predictions.keypoints");
        const std::string format = r.string(p, "keypoint_format", "output_layout.predictions.keypoint_format");
        if (format == "x, y, visibility") out.keypoint_dims = 3;
        else if (format == "x, y") out.keypoint_dims = 2;
        else r.wrong("output_layout.predictions.keypoint_format", "\"x, y, visibility\" or \"x, y\"", p["keypoint_format"]);
        if (out.keypoints.size() != meta.num_keypoints * out.keypoint_dims)
            r.fail("output_layout.predictions.keypoints spans " + std::to_string(out.keypoints.size()) + " channels, expected num_keypoints (" +
                   std::to_string(meta.num_keypoints) + ") x " + std::to_string(out.keypoint_dims) + kRegenerateHint);
        const int unit = r.choice(p, "keypoint_units", "output_layout.predictions.keypoint_units", {"input_pixels", "normalized"},
                                  out.box_normalized ? 1 : 0);
        out.keypoints_normalized = unit == 1;
        needed = std::max(needed, out.keypoints.end);
    }
    if (predictions->shape.size() != 3) r.wrong("the predictions output's shape", "[batch, channels, anchors]", json(predictions->shape));
    const int64_t channels = predictions->shape[out.anchors_last ? 1 : 2];
    if (channels != -1 && channels < needed)
        r.fail("output_layout needs " + std::to_string(needed) + " channels but output \"" + out.predictions_output + "\" has " +
               std::to_string(channels) + kRegenerateHint);
    return out;
}

void parse_keypoint_facts(const Reader& r, const json& root, ModelMetadata& meta) {
    meta.num_keypoints = r.integer(root, "num_keypoints", "num_keypoints");
    if (meta.num_keypoints < 1) r.wrong("num_keypoints", "an integer >= 1", root["num_keypoints"]);
    if (root.contains("keypoint_names")) {
        const json& names = root["keypoint_names"];
        if (!names.is_array()) r.wrong("keypoint_names", "an array of strings", names);
        for (const json& name : names) {
            if (!name.is_string()) r.wrong("keypoint_names", "an array of strings", names);
            meta.keypoint_names.push_back(name.get<std::string>());
        }
    }
    if (root.contains("skeleton")) {
        const json& skeleton = root["skeleton"];
        if (!skeleton.is_array()) r.wrong("skeleton", "an array of [a, b] keypoint pairs", skeleton);
        for (const json& pair : skeleton) {
            if (!pair.is_array() || pair.size() != 2) r.wrong("skeleton", "an array of [a, b] keypoint pairs", skeleton);
            meta.skeleton.emplace_back(r.integer(pair[0], "skeleton"), r.integer(pair[1], "skeleton"));
        }
    }
}

}  // namespace

ModelMetadata parse_metadata(const std::string& json_text, const std::string& source) {
    const Reader r(source);
    json root;
    try {
        root = json::parse(json_text);
    } catch (const json::parse_error& e) {
        r.fail(std::string("not valid JSON (") + e.what() + ")");
    }
    if (!root.is_object()) r.wrong("the document", "a JSON object", root);

    ModelMetadata meta;
    meta.task = parse_task(r, root);

    const json& input_shape = r.require(root, "input_shape", "input_shape");
    if (!input_shape.is_array() || input_shape.size() != 3) r.wrong("input_shape", "[height, width, channels]", input_shape);
    meta.input_height = r.integer(input_shape[0], "input_shape[0]");
    meta.input_width = r.integer(input_shape[1], "input_shape[1]");
    if (meta.input_height < 1 || meta.input_width < 1 || r.integer(input_shape[2], "input_shape[2]") != 3)
        r.wrong("input_shape", "[height, width, 3] with positive sizes", input_shape);

    const json& names = r.require(root, "class_names", "class_names");
    if (!names.is_array() || names.empty()) r.wrong("class_names", "a non-empty array of strings", names);
    for (const json& name : names) {
        if (!name.is_string()) r.wrong("class_names", "a non-empty array of strings", names);
        meta.class_names.push_back(name.get<std::string>());
    }

    meta.inputs = r.tensors(root, "inputs");
    meta.outputs = r.tensors(root, "outputs");
    if (meta.inputs[0].shape.size() != 4) r.wrong("inputs[0].shape", "[batch, channels, height, width] (or NHWC)", json(meta.inputs[0].shape));
    meta.preprocessing = parse_preprocessing(r, root);
    meta.postprocessing = parse_postprocessing(r, root);
    if (meta.task == Task::Pose) parse_keypoint_facts(r, root, meta);
    meta.layout = parse_output_layout(r, root, meta);
    return meta;
}

ModelMetadata load_metadata(const std::string& path) {
    std::ifstream file(path);
    if (!file) throw MetadataError(path + ": cannot open metadata.json (is the path right? exportkit writes it beside the model)");
    std::stringstream text;
    text << file.rdbuf();
    return parse_metadata(text.str(), path);
}

}  // namespace exportkit
