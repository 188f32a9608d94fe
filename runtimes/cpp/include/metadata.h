// metadata.json, as the C++ runtime reads it: everything about pre- and postprocessing comes from here.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace exportkit {

// metadata.json is missing, unreadable, or breaks the contract (a key is absent, has the wrong type, or names
// something this runtime does not support). The message names the key, what was found and what was expected.
class MetadataError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class Task { Detect, Segment, Pose };
enum class ResizeMode { Letterbox, Stretch };
enum class ElementType { Float32, Float16 };

const char* task_name(Task task);

// A half-open channel range [begin, end) inside the predictions output.
struct ChannelRange {
    int begin = 0;
    int end = 0;
    int size() const { return end - begin; }
    bool empty() const { return end <= begin; }
};

struct TensorSpec {
    std::string name;
    std::vector<int64_t> shape;  // -1 marks a dynamic axis
    ElementType dtype = ElementType::Float32;
};

struct Preprocessing {
    std::array<float, 3> mean{0.f, 0.f, 0.f};        // per channel, in the model's colour order
    std::array<float, 3> std{255.f, 255.f, 255.f};
    bool normalize = true;                            // false: feed 0..255 values unchanged
    bool rgb = true;                                  // colour order the model expects (images arrive as BGR)
    bool nchw = true;                                 // input tensor layout; false means NHWC
    ResizeMode resize_mode = ResizeMode::Letterbox;
    int pad_value = 114;
    bool letterbox_center = true;
    bool scale_up = true;
};

struct Postprocessing {
    double confidence_threshold = 0.25;
    double iou_threshold = 0.45;
    int max_detections = 300;
    bool agnostic_nms = false;
};

// Where boxes, scores, mask coefficients and keypoints sit in the raw [batch, channels, anchors] output.
struct OutputLayout {
    std::string predictions_output;
    bool anchors_last = true;       // [batch, channels, anchors]; false: [batch, anchors, channels]
    bool nms_applied = false;       // rows of final detections ([batch, detections, values], in-model NMS): no NMS here
    int class_index = -1;           // nms_applied: the value holding the class id (class_scores then holds the one score)
    ChannelRange box;
    bool box_xyxy = false;          // false: cx, cy, w, h
    bool box_normalized = false;    // false: input pixels
    ChannelRange class_scores;
    bool scores_activated = true;   // false: apply a sigmoid to the class scores
    ChannelRange mask_coefficients; // segment only
    ChannelRange keypoints;         // pose only
    int keypoint_dims = 0;          // 2 (x, y) or 3 (x, y, visibility); pose only
    bool keypoints_normalized = false;  // keypoint x, y in 0..1 of the input (keypoint_units, default box_units)
    std::string prototypes_output;  // segment only
    bool prototypes_channels_first = true;  // [batch, coefficients, h, w]; false: [batch, h, w, coefficients]

    // How many channels (values per anchor or detection) the predictions output must have.
    int channels_needed() const {
        int needed = box.end > class_scores.end ? box.end : class_scores.end;
        for (int end : {mask_coefficients.end, keypoints.end, class_index + 1}) needed = end > needed ? end : needed;
        return needed;
    }
};

struct ModelMetadata {
    Task task = Task::Detect;
    int input_height = 0;
    int input_width = 0;
    std::vector<std::string> class_names;
    std::vector<TensorSpec> inputs;
    std::vector<TensorSpec> outputs;
    Preprocessing preprocessing;
    Postprocessing postprocessing;
    OutputLayout layout;
    int num_keypoints = 0;
    std::vector<std::string> keypoint_names;
    std::vector<std::pair<int, int>> skeleton;  // 1-based keypoint index pairs, as in metadata.json

    int num_classes() const { return static_cast<int>(class_names.size()); }
};

// Parse metadata.json text; `source` names the file in error messages. Throws MetadataError.
ModelMetadata parse_metadata(const std::string& json_text, const std::string& source = "metadata.json");

// Read and parse a metadata.json file. Throws MetadataError.
ModelMetadata load_metadata(const std::string& path);

}  // namespace exportkit
