#include "onnx_inference.h"

#include <chrono>
#include <fstream>

#include <onnxruntime_cxx_api.h>
#include <opencv2/imgproc.hpp>

#include "decode.h"
#include "letterbox.h"

namespace exportkit {

namespace {

using Clock = std::chrono::steady_clock;

double milliseconds_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

Ort::Env& shared_env() {
    static Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "exportkit");
    return env;
}

// An output tensor as float32: points into ONNX Runtime's buffer, or into `converted` for a float16 output.
struct FloatTensor {
    const float* data = nullptr;
    std::vector<int64_t> shape;
    std::vector<float> converted;
};

FloatTensor as_float(const Ort::Value& value, const std::string& name) {
    FloatTensor t;
    const auto info = value.GetTensorTypeAndShapeInfo();
    t.shape = info.GetShape();
    const size_t count = info.GetElementCount();
    switch (info.GetElementType()) {
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
            t.data = value.GetTensorData<float>();
            break;
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: {
            const Ort::Float16_t* half = value.GetTensorData<Ort::Float16_t>();
            t.converted.resize(count);
            for (size_t i = 0; i < count; ++i) t.converted[i] = half[i].ToFloat();
            t.data = t.converted.data();
            break;
        }
        default:
            throw InferenceError("output \"" + name + "\" has element type " + std::to_string(info.GetElementType()) +
                                 "; the C++ runtime reads float32 and float16 outputs only");
    }
    return t;
}

cv::Mat as_bgr(const cv::Mat& image) {
    if (image.empty()) throw std::invalid_argument("predict: the image is empty (did cv::imread fail to read it?)");
    if (image.depth() != CV_8U) throw std::invalid_argument("predict: expected an 8-bit image, got OpenCV depth " + std::to_string(image.depth()));
    if (image.channels() == 3) return image;
    cv::Mat bgr;
    if (image.channels() == 1) cv::cvtColor(image, bgr, cv::COLOR_GRAY2BGR);
    else if (image.channels() == 4) cv::cvtColor(image, bgr, cv::COLOR_BGRA2BGR);
    else throw std::invalid_argument("predict: expected a BGR image, got " + std::to_string(image.channels()) + " channels");
    return bgr;
}

}  // namespace

struct ONNXInference::Impl {
    ModelMetadata meta;
    Ort::Session session{nullptr};
    Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    std::vector<int64_t> input_shape;
    std::vector<float> input_buffer;
    std::vector<Ort::Float16_t> input_half;
    std::string input_name;
    std::vector<std::string> output_names;  // predictions first, then prototypes (segment)

    Impl(const std::string& model_path, const std::string& metadata_path, const SessionConfig& config) : meta(load_metadata(metadata_path)) {
        if (!std::ifstream(model_path)) throw InferenceError(model_path + ": cannot open the model file");
        Ort::SessionOptions options;
        options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
        if (config.intra_op_threads > 0) options.SetIntraOpNumThreads(config.intra_op_threads);
        try {
            session = Ort::Session(shared_env(), model_path.c_str(), options);
        } catch (const Ort::Exception& e) {
            throw InferenceError(model_path + ": ONNX Runtime cannot load the model: " + e.what());
        }
        check_names(model_path);
        size_input();
    }

    void check_names(const std::string& model_path) {
        Ort::AllocatorWithDefaultOptions allocator;
        std::vector<std::string> model_inputs, model_outputs;
        for (size_t i = 0; i < session.GetInputCount(); ++i) model_inputs.emplace_back(session.GetInputNameAllocated(i, allocator).get());
        for (size_t i = 0; i < session.GetOutputCount(); ++i) model_outputs.emplace_back(session.GetOutputNameAllocated(i, allocator).get());
        auto join = [](const std::vector<std::string>& names) {
            std::string text;
            for (const auto& n : names) text += (text.empty() ? "" : ", ") + n;
            return text;
        };
        input_name = meta.inputs[0].name;
        if (model_inputs.size() != 1 || model_inputs[0] != input_name)
            throw MetadataError(model_path + ": the model's inputs are [" + join(model_inputs) + "] but metadata.json expects [" + input_name +
                                 "]; is metadata.json the one exported with this model?");
        output_names = {meta.layout.predictions_output};
        if (meta.task == Task::Segment) output_names.push_back(meta.layout.prototypes_output);
        for (const std::string& name : output_names)
            if (std::find(model_outputs.begin(), model_outputs.end(), name) == model_outputs.end())
                throw MetadataError(model_path + ": the model has no output \"" + name + "\" (it has [" + join(model_outputs) +
                                     "]); is metadata.json the one exported with this model?");
    }

    void size_input() {
        const bool nchw = meta.preprocessing.nchw;
        input_shape = meta.inputs[0].shape;
        const int64_t fixed[4] = {1, nchw ? 3 : meta.input_height, nchw ? meta.input_height : meta.input_width, nchw ? meta.input_width : 3};
        for (size_t i = 0; i < 4; ++i) {
            if (input_shape[i] == -1) input_shape[i] = fixed[i];
            else if (input_shape[i] != fixed[i])
                throw MetadataError("metadata.json: inputs[0].shape disagrees with input_shape (" + std::to_string(meta.input_height) + "x" +
                                    std::to_string(meta.input_width) + ") and preprocessing.layout; re-export the model");
        }
        input_buffer.resize(static_cast<size_t>(3) * meta.input_height * meta.input_width);
        if (meta.inputs[0].dtype == ElementType::Float16) input_half.resize(input_buffer.size());
    }

    std::vector<Ort::Value> run() {
        Ort::Value input{nullptr};
        if (meta.inputs[0].dtype == ElementType::Float16) {
            for (size_t i = 0; i < input_buffer.size(); ++i) input_half[i] = Ort::Float16_t(input_buffer[i]);
            input = Ort::Value::CreateTensor<Ort::Float16_t>(memory, input_half.data(), input_half.size(), input_shape.data(), input_shape.size());
        } else {
            input = Ort::Value::CreateTensor<float>(memory, input_buffer.data(), input_buffer.size(), input_shape.data(), input_shape.size());
        }
        const char* in_names[] = {input_name.c_str()};
        std::vector<const char*> out_names;
        for (const auto& n : output_names) out_names.push_back(n.c_str());
        try {
            return session.Run(Ort::RunOptions{nullptr}, in_names, &input, 1, out_names.data(), out_names.size());
        } catch (const Ort::Exception& e) {
            throw InferenceError(std::string("ONNX Runtime failed to run the model: ") + e.what());
        }
    }

    Results predict(const cv::Mat& raw, double conf, double iou) {
        Results results;
        auto start = Clock::now();
        const cv::Mat image = as_bgr(raw);
        results.image_width = image.cols;
        results.image_height = image.rows;
        const Preprocessing& pre = meta.preprocessing;
        const LetterboxGeometry geometry =
            compute_letterbox(image.cols, image.rows, meta.input_width, meta.input_height, pre.resize_mode, pre.scale_up, pre.letterbox_center);
        image_to_tensor(apply_letterbox(image, geometry, pre.pad_value), pre, input_buffer.data());
        results.timing.preprocess_ms = milliseconds_since(start);

        start = Clock::now();
        std::vector<Ort::Value> outputs = run();
        results.timing.inference_ms = milliseconds_since(start);

        start = Clock::now();
        const FloatTensor predictions = as_float(outputs[0], output_names[0]);
        FloatTensor prototypes;
        if (meta.task == Task::Segment) prototypes = as_float(outputs[1], output_names[1]);
        const TensorView protos{prototypes.data, prototypes.shape};
        DecodeLimits limits = decode_limits(meta, conf, iou);
        try {
            results.detections = decode_detections(meta, {predictions.data, predictions.shape}, meta.task == Task::Segment ? &protos : nullptr,
                                                   geometry, limits);
        } catch (const MetadataError& e) {
            throw InferenceError(e.what());  // the model's outputs disagree with metadata.json
        }
        results.timing.postprocess_ms = milliseconds_since(start);
        return results;
    }
};

ONNXInference::ONNXInference(const std::string& model_path, const std::string& metadata_path, const SessionConfig& config)
    : impl_(std::make_unique<Impl>(model_path, metadata_path, config)) {}

ONNXInference::~ONNXInference() = default;
ONNXInference::ONNXInference(ONNXInference&&) noexcept = default;
ONNXInference& ONNXInference::operator=(ONNXInference&&) noexcept = default;

Results ONNXInference::predict(const cv::Mat& image, std::optional<double> confidence_threshold, std::optional<double> iou_threshold) {
    const double conf = confidence_threshold.value_or(impl_->meta.postprocessing.confidence_threshold);
    const double iou = iou_threshold.value_or(impl_->meta.postprocessing.iou_threshold);
    if (conf < 0.0 || conf > 1.0 || iou < 0.0 || iou > 1.0)
        throw std::invalid_argument("predict: thresholds must be in 0..1, got confidence " + std::to_string(conf) + ", IoU " + std::to_string(iou));
    return impl_->predict(image, conf, iou);
}

const ModelMetadata& ONNXInference::metadata() const { return impl_->meta; }

}  // namespace exportkit
