#include "decode.h"

#include <algorithm>

namespace exportkit {

DecodeLimits decode_limits(const ModelMetadata& meta, std::optional<double> confidence, std::optional<double> iou) {
    const Postprocessing& post = meta.postprocessing;
    return {confidence.value_or(post.confidence_threshold), iou.value_or(post.iou_threshold), post.max_detections, post.agnostic_nms};
}

PredictionsView predictions_of(const TensorView& t, const ModelMetadata& meta) {
    const OutputLayout& l = meta.layout;
    std::vector<int64_t> shape = t.shape;
    if (shape.size() == 2) shape.insert(shape.begin(), 1);  // CoreML-style outputs without a batch axis
    if (shape.size() != 3 || shape[0] < 1)
        throw MetadataError("output \"" + l.predictions_output + "\" should be [batch, channels, anchors] (or anchors first), got rank " +
                            std::to_string(t.shape.size()));
    const int64_t channels = shape[l.anchors_last ? 1 : 2], anchors = shape[l.anchors_last ? 2 : 1];
    if (channels < l.channels_needed())
        throw MetadataError("output \"" + l.predictions_output + "\" has " + std::to_string(channels) + " channels; metadata.json's output_layout needs " +
                            std::to_string(l.channels_needed()));
    return {t.data, static_cast<int>(channels), static_cast<int>(anchors), l.anchors_last};  // batch 0
}

namespace {

// Prototypes of image 0, channels first; a [batch, h, w, coefficients] tensor is transposed into `storage`.
PrototypesView prototypes_of(const TensorView& t, const OutputLayout& layout, std::vector<float>& storage) {
    if (t.shape.size() != 4) throw MetadataError("output \"" + layout.prototypes_output + "\" should have rank 4, got " + std::to_string(t.shape.size()));
    if (layout.prototypes_channels_first)
        return {t.data, static_cast<int>(t.shape[1]), static_cast<int>(t.shape[2]), static_cast<int>(t.shape[3])};
    const int h = static_cast<int>(t.shape[1]), w = static_cast<int>(t.shape[2]), c = static_cast<int>(t.shape[3]);
    storage.assign(static_cast<size_t>(c) * h * w, 0.f);
    for (int i = 0; i < h * w; ++i)
        for (int k = 0; k < c; ++k) storage[static_cast<size_t>(k) * h * w + i] = t.data[static_cast<size_t>(i) * c + k];
    return {storage.data(), c, h, w};
}

}  // namespace

std::vector<Detection> decode_detections(const ModelMetadata& meta, const TensorView& predictions, const TensorView* prototypes,
                                         const LetterboxGeometry& geometry, const DecodeLimits& limits) {
    const OutputLayout& layout = meta.layout;
    const PredictionsView view = predictions_of(predictions, meta);
    const float conf = static_cast<float>(limits.confidence_threshold);
    std::vector<Candidate> candidates;
    std::vector<int> kept;
    if (layout.nms_applied) {  // rows are final detections: score filter, then the first max_detections
        candidates = decode_rows(view, layout, meta.input_width, meta.input_height, conf);
        for (int i = 0; i < static_cast<int>(candidates.size()) && i < limits.max_detections; ++i) kept.push_back(i);
    } else {
        candidates = decode_candidates(view, layout, meta.input_width, meta.input_height, conf);
        kept = non_max_suppression(candidates, limits.iou_threshold, limits.agnostic, limits.max_detections);
    }

    std::vector<float> storage;
    PrototypesView protos;
    if (meta.task == Task::Segment) {
        if (!prototypes) throw MetadataError("a segment model needs its prototypes output \"" + layout.prototypes_output + "\"");
        protos = prototypes_of(*prototypes, layout, storage);
    }
    std::vector<Detection> detections;
    for (int index : kept) {
        const Candidate& c = candidates[index];
        Detection d;
        d.class_id = c.class_id;
        d.class_name = c.class_id >= 0 && c.class_id < meta.num_classes() ? meta.class_names[c.class_id] : "class_" + std::to_string(c.class_id);
        d.confidence = c.score;
        d.box = box_to_source(c.box, geometry);
        if (meta.task == Task::Segment) {
            d.mask = build_mask(view, layout, c.anchor, protos, geometry, d.box);
            if (cv::countNonZero(d.mask) == 0) continue;  // as Ultralytics: an instance without mask pixels is dropped
        }
        if (meta.task == Task::Pose) d.keypoints = decode_keypoints(view, layout, c.anchor, geometry);
        detections.push_back(std::move(d));
    }
    return detections;
}

}  // namespace exportkit
