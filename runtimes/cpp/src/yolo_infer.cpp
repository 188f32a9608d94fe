// yolo_infer: run an exported YOLO ONNX model on one image and print the detections.
//
//   yolo_infer MODEL IMAGE [--metadata PATH] [--conf X] [--iou X] [--json] [--threads N] [--bench N [--warmup N]]
//
// Exit codes: 0 ok, 1 inference failed, 3 configuration error (arguments, metadata.json, unreadable image).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "onnx_inference.h"

namespace {

constexpr int kExitInferenceFailed = 1;
constexpr int kExitConfigError = 3;

const char* const kUsage =
    "usage: yolo_infer MODEL IMAGE [options]\n"
    "\n"
    "Run an exportkit ONNX model (detect, segment or pose) on IMAGE and print its detections.\n"
    "MODEL: model.onnx, or the export folder holding model.onnx + metadata.json.\n"
    "\n"
    "options:\n"
    "  --metadata PATH  metadata.json (default: metadata.json beside MODEL)\n"
    "  --conf X         confidence threshold (default: metadata.json's postprocessing.confidence_threshold)\n"
    "  --iou X          NMS IoU threshold (default: metadata.json's postprocessing.iou_threshold)\n"
    "  --json           print machine-readable results (masks run-length encoded)\n"
    "  --threads N      ONNX Runtime intra-op threads (default: ONNX Runtime's choice)\n"
    "  --bench N        time N predict() calls on the decoded image and print median/mean/min milliseconds\n"
    "  --warmup N       untimed predict() calls before --bench (default 3)\n"
    "\n"
    "exit codes: 0 ok, 1 inference failed, 3 configuration error\n";

struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Options {
    std::string model, image, metadata;
    std::optional<double> conf, iou;
    bool json = false;
    int threads = 0, bench = 0, warmup = 3;
};

double parse_number(const std::string& flag, const std::string& text) {
    try {
        size_t used = 0;
        const double value = std::stod(text, &used);
        if (used == text.size()) return value;
    } catch (const std::exception&) {
    }
    throw ConfigError(flag + " expects a number, got \"" + text + "\"");
}

int parse_count(const std::string& flag, const std::string& text) {
    const double value = parse_number(flag, text);
    if (value < 0 || value != static_cast<int>(value)) throw ConfigError(flag + " expects a whole number >= 0, got \"" + text + "\"");
    return static_cast<int>(value);
}

// exportkit's other artifacts, which this runtime cannot run (it runs ONNX only).
const std::vector<std::pair<std::string, std::string>> kOtherFormats = {
    {".xml", "an OpenVINO model"}, {".bin", "OpenVINO weights"}, {".tflite", "a TFLite model"},
    {".engine", "a TensorRT engine"}, {".torchscript", "a TorchScript model"}, {".mlpackage", "a CoreML package"},
    {".pt", "a PyTorch checkpoint"}};

std::string other_format(const std::filesystem::path& path) {
    for (const auto& [suffix, what] : kOtherFormats)
        if (path.extension() == suffix) return what;
    return "";
}

// MODEL may be model.onnx or the export folder holding model.onnx + metadata.json, as in the Python runtime.
std::string resolve_model(const std::string& given) {
    namespace fs = std::filesystem;
    const fs::path path(given);
    const std::string expected = "the C++ runtime runs ONNX exports: model.onnx, or the folder holding model.onnx + metadata.json "
                                 "(python export.py --export_format onnx)";
    if (fs::is_directory(path)) {
        if (fs::exists(path / "model.onnx")) return (path / "model.onnx").string();
        for (const auto& [suffix, what] : kOtherFormats)
            if (fs::exists(path / ("model" + suffix)))
                throw ConfigError(given + ": this folder holds " + what + " (model" + suffix + "), not model.onnx; " + expected);
        throw ConfigError(given + ": this folder has no model.onnx; " + expected);
    }
    const std::string what = other_format(path);
    if (!what.empty()) throw ConfigError(given + ": " + what + ", not an ONNX model; " + expected);
    if (!fs::exists(path)) throw ConfigError(given + ": no such file; " + expected);
    return given;
}

Options parse_arguments(int argc, char** argv) {
    Options o;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw ConfigError(arg + " needs a value");
            return argv[++i];
        };
        if (arg == "-h" || arg == "--help") {
            std::cout << kUsage;
            std::exit(0);
        } else if (arg == "--metadata") o.metadata = value();
        else if (arg == "--conf") o.conf = parse_number(arg, value());
        else if (arg == "--iou") o.iou = parse_number(arg, value());
        else if (arg == "--json") o.json = true;
        else if (arg == "--threads") o.threads = parse_count(arg, value());
        else if (arg == "--bench") o.bench = parse_count(arg, value());
        else if (arg == "--warmup") o.warmup = parse_count(arg, value());
        else if (arg.rfind("--", 0) == 0) throw ConfigError("unknown option " + arg + " (see --help)");
        else positional.push_back(arg);
    }
    if (positional.size() != 2) throw ConfigError("expected MODEL and IMAGE, got " + std::to_string(positional.size()) + " positional arguments (see --help)");
    o.model = resolve_model(positional[0]);
    o.image = positional[1];
    if (o.metadata.empty()) o.metadata = (std::filesystem::path(o.model).parent_path() / "metadata.json").string();
    for (const auto& [flag, v] : {std::pair{"--conf", o.conf}, std::pair{"--iou", o.iou}})
        if (v && (*v < 0.0 || *v > 1.0)) throw ConfigError(std::string(flag) + " must be in 0..1, got " + std::to_string(*v));
    return o;
}

struct BenchStats {
    int runs = 0;
    double median_ms = 0, mean_ms = 0, min_ms = 0;
};

BenchStats benchmark(exportkit::ONNXInference& model, const cv::Mat& image, const Options& o) {
    for (int i = 0; i < o.warmup; ++i) model.predict(image, o.conf, o.iou);
    std::vector<double> times;
    for (int i = 0; i < o.bench; ++i) {
        const auto start = std::chrono::steady_clock::now();
        model.predict(image, o.conf, o.iou);
        times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(times.begin(), times.end());
    const size_t n = times.size();
    const double median = n % 2 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
    return {static_cast<int>(n), median, std::accumulate(times.begin(), times.end(), 0.0) / n, times.front()};
}

void print_text(const exportkit::Results& r, const exportkit::ModelMetadata& meta) {
    std::printf("%dx%d image, %zu detections (%s, %.1f ms)\n", r.image_width, r.image_height, r.detections.size(), exportkit::task_name(meta.task),
                r.timing.total_ms());
    for (const auto& d : r.detections) {
        std::printf("  %-16s %.3f  [%.1f, %.1f, %.1f, %.1f]", d.class_name.c_str(), d.confidence, d.box.x1, d.box.y1, d.box.x2, d.box.y2);
        if (!d.mask.empty()) std::printf("  mask %d px", cv::countNonZero(d.mask));
        if (!d.keypoints.empty()) {
            int visible = 0;
            for (const auto& k : d.keypoints) visible += k.visibility >= 0.5f;
            std::printf("  %d/%zu keypoints visible", visible, d.keypoints.size());
        }
        std::printf("\n");
    }
}

int run(const Options& o) {
    if (!std::ifstream(o.model)) throw ConfigError(o.model + ": cannot open the model file");
    if (!std::ifstream(o.image)) throw ConfigError(o.image + ": cannot open the image");
    const cv::Mat image = cv::imread(o.image, cv::IMREAD_COLOR);
    if (image.empty()) throw ConfigError(o.image + ": cannot read the image");
    exportkit::ONNXInference model(o.model, o.metadata, exportkit::SessionConfig{o.threads});
    if (o.bench > 0) {
        const BenchStats s = benchmark(model, image, o);
        if (o.json) {
            std::cout << nlohmann::json{{"bench", {{"runs", s.runs}, {"warmup", o.warmup}, {"median_ms", s.median_ms}, {"mean_ms", s.mean_ms}, {"min_ms", s.min_ms}}}}.dump()
                      << "\n";
        } else {
            std::printf("%d runs (%d warm-up excluded): median %.2f ms, mean %.2f ms, min %.2f ms\n", s.runs, o.warmup, s.median_ms, s.mean_ms, s.min_ms);
        }
        return 0;
    }
    const exportkit::Results results = model.predict(image, o.conf, o.iou);
    if (o.json) std::cout << exportkit::results_to_json(results, exportkit::task_name(model.metadata().task)) << "\n";
    else print_text(results, model.metadata());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(parse_arguments(argc, argv));
    } catch (const ConfigError& e) {
        std::cerr << "yolo_infer: error: " << e.what() << "\n";
        return kExitConfigError;
    } catch (const exportkit::MetadataError& e) {
        std::cerr << "yolo_infer: error: " << e.what() << "\n";
        return kExitConfigError;
    } catch (const std::exception& e) {
        std::cerr << "yolo_infer: error: " << e.what() << "\n";
        return kExitInferenceFailed;
    }
}
